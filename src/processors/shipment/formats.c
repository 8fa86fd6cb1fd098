/*
 * Tracking number formats, one row per format. The layouts and check digit rules follow
 * jkeen/tracking_number_data (MIT), rewritten for numbers whose spaces were already removed;
 * the format ids are that project's ids. Order matters only for ties: when a number fits
 * several formats, the first row is the default carrier.
 */
#include <stdlib.h>
#include <string.h>

#include "processors/shipment/tracking_int.h"

#define SN "(?<SerialNumber>"
#define CD "(?<CheckDigit>[0-9])"

#define UPS_URL    "https://www.ups.com/track?tracknum=%s"
#define FEDEX_URL  "https://www.fedex.com/fedextrack/?trknbr=%s"
#define USPS_URL   "https://tools.usps.com/go/TrackConfirmAction?tLabels=%s"
#define DHL_URL    "https://www.dhl.com/global-en/home/tracking.html?tracking-id=%s"
#define ONTRAC_URL "https://www.ontrac.com/tracking/?number=%s"
#define LS_URL     "https://www.ontrac.com/tracking/?number=%s"
#define PURO_URL   "https://www.purolator.com/en/shipping/tracker?searchValue=%s"
#define DPD_URL    "https://www.dpdgroup.com/nl/mydpd/my-parcels/track?lang=en&parcelNumber=%s"
#define ODFL_URL   "https://www.odfl.com/Trace/standardResult.faces?pro=%s"

/* Routing prefix of USPS IMpb labels: 420 + ZIP (+4), only when an IMpb number follows. */
#define IMPB_ZIP_N                                                                                 \
    "(?:(?<RoutingApplicationId>420)(?<DestinationZip>[0-9]{5}(?=[0-9]{22}$|[0-9]{26}$))"          \
    "(?<DestinationZipPlus4>[0-9]{4}(?=[0-9]{22}$))?)?"
#define IMPB_ZIP_C                                                                                 \
    "(?:(?<RoutingApplicationId>420)(?<DestinationZip>[0-9]{5})"                                   \
    "(?<DestinationZipPlus4>[0-9]{4}(?=[0-9]{22}$))?)?"

const struct dr__format dr__formats[] = {
    /* UPS */
    {.id = "ups",
     .carrier = "ups",
     .name = "UPS",
     .regex = "1Z" SN "(?<ShipperId>[A-Z0-9]{6})(?<ServiceType>[A-Z0-9]{2})"
              "(?<PackageId>[A-Z0-9]{7}))" CD,
     .url = UPS_URL,
     .checksum = DR__CK_MOD10,
     .evens = 1,
     .odds = 2},
    {.id = "ups_waybill",
     .carrier = "ups",
     .name = "UPS Waybill",
     .regex = "(?<ServiceType>[AHJKTV])" SN "[0-9]{9})" CD,
     .url = UPS_URL,
     .checksum = DR__CK_MOD10,
     .evens = 1,
     .odds = 2,
     .trust = DR__TRUST_SHORT},

    /* FedEx */
    {.id = "fedex_12",
     .carrier = "fedex",
     .name = "FedEx Express (12)",
     .regex = SN "[0-9]{11})" CD,
     .url = FEDEX_URL,
     .checksum = DR__CK_SUM_PRODUCT,
     .weights = "31731731731",
     .mod1 = 11,
     .mod2 = 10,
     .trust = DR__TRUST_CONTEXT},
    {.id = "fedex_34",
     .carrier = "fedex",
     .name = "FedEx Express (34)",
     .regex = "[0-8][0-9]{14}(?<DestinationZip>[0-9]{5})" SN "[0-9]{13})" CD,
     .url = FEDEX_URL,
     .checksum = DR__CK_SUM_PRODUCT,
     .weights = "1731731731731",
     .mod1 = 11,
     .mod2 = 10,
     .trust = DR__TRUST_CONTEXT},
    {.id = "fedex_astra_32",
     .carrier = "fedex",
     .name = "FedEx ASTRA (32)",
     .regex = "3[0-9]{5}[0-9]{3}[0-9]{7}" SN "[0-9]{11})" CD "[0-9]{4}",
     .url = FEDEX_URL,
     .checksum = DR__CK_SUM_PRODUCT,
     .weights = "31731731731",
     .mod1 = 11,
     .mod2 = 10,
     .trust = DR__TRUST_CONTEXT},
    {.id = "fedex_ground",
     .carrier = "fedex",
     .name = "FedEx Ground",
     .regex = SN "[0-9]{14})" CD,
     .url = FEDEX_URL,
     .checksum = DR__CK_MOD10,
     .evens = 1,
     .odds = 3,
     .trust = DR__TRUST_CONTEXT},
    {.id = "fedex_ground_sscc_18",
     .carrier = "fedex",
     .name = "FedEx Ground (SSCC-18)",
     .regex = "(?<ShippingContainerType>[0-9]{2})" SN "[0-9]{15})" CD,
     .url = FEDEX_URL,
     .checksum = DR__CK_MOD10,
     .evens = 3,
     .odds = 1,
     .trust = DR__TRUST_CONTEXT},
    {.id = "fedex_ground_96",
     .carrier = "fedex",
     .name = "FedEx Ground 96 (22)",
     .regex = "(?<ApplicationIdentifier>96)(?<SCNC>[0-9]{2})(?<ServiceType>[0-9]{3})" SN
              "(?<ShipperId>[0-9]{7})(?<PackageId>[0-9]{7}))" CD,
     .url = FEDEX_URL,
     .checksum = DR__CK_MOD10,
     .evens = 1,
     .odds = 3,
     .trust = DR__TRUST_CONTEXT},
    {.id = "fedex_ground_gsn",
     .carrier = "fedex",
     .name = "FedEx Ground GSN",
     .regex = "(?<ApplicationIdentifier>96)(?<SCNC>[0-9]{2})[0-9]{5}(?<GSN>[0-9]{10})[0-9]" SN
              "[0-9]{13})" CD,
     .url = FEDEX_URL,
     .checksum = DR__CK_SUM_PRODUCT,
     .weights = "1731731731731",
     .mod1 = 11,
     .mod2 = 10,
     .trust = DR__TRUST_CONTEXT},

    /* DHL Paket (Germany): application identifier 00 and a GS1 SSCC. Every such number passes
     * USPS 20's rule too; this row comes first, so that DHL is the carrier unless the email
     * comes from (or names) USPS. */
    {.id = "dhl_paket_sscc",
     .carrier = "dhl",
     .name = "DHL Paket (SSCC)",
     .regex = "00" SN "[0-9]{17})" CD,
     .url = DHL_URL,
     .checksum = DR__CK_MOD10,
     .evens = 3,
     .odds = 1,
     .trust = DR__TRUST_CONTEXT},

    /* USPS */
    {.id = "usps_20",
     .carrier = "usps",
     .name = "USPS 20",
     .regex = SN "(?<ServiceType>[0-9]{2})(?<ShipperId>[0-9]{9})(?<PackageId>[0-9]{8}))" CD,
     .url = USPS_URL,
     .checksum = DR__CK_MOD10,
     .evens = 3,
     .odds = 1,
     .trust = DR__TRUST_CONTEXT},
    {.id = "usps_impb_n",
     .carrier = "usps",
     .name = "USPS IMpb N",
     .regex = IMPB_ZIP_N SN "(?<ApplicationIdentifier>94)(?<ServiceType>[0-9]{3})"
                            "(?=9[0-9]{8}(?:[0-9]{15}|[0-9]{11}|[0-9]{7})[0-9]$"
                            "|[0-8][0-9]{5}(?:[0-9]{14}|[0-9]{10})[0-9]$)"
                            "(?<ShipperId>9[0-9]{8}|[0-8][0-9]{5})"
                            "(?<PackageId>[0-9]{15}|[0-9]{14}|[0-9]{11}|[0-9]{10}|[0-9]{7}))" CD,
     .url = USPS_URL,
     .checksum = DR__CK_MOD10,
     .evens = 3,
     .odds = 1,
     .reverse = 1,
     .trust = DR__TRUST_CONTEXT},
    {.id = "usps_legacy",
     .carrier = "usps",
     .name = "USPS Legacy",
     .regex = "(?:(?<RoutingApplicationId>420)(?<DestinationZip>[0-9]{5})"
              "(?<DestinationZipPlus4>[0-9]{4})?)?" SN "(?<ApplicationIdentifier>91)?"
              "(?<ServiceType>[0-9]{2})(?<ShipperId>[0-9]{9})(?<PackageId>[0-9]{8}))" CD,
     .url = USPS_URL,
     .checksum = DR__CK_MOD10,
     .evens = 3,
     .odds = 1,
     .prepend = "91",
     .trust = DR__TRUST_CONTEXT},
    {.id = "usps_impb_c",
     .carrier = "usps",
     .name = "USPS IMpb C",
     .regex = IMPB_ZIP_C SN "(?<ApplicationIdentifier>92(?=[0-9]{3}9)|93(?=[0-9]{3}[0-8])|95)"
                            "(?<ServiceType>[0-9]{3})"
                            "(?=9[0-9]{8}(?:[0-9]{11}|[0-9]{7})[0-9]$"
                            "|[0-8][0-9]{5}(?:[0-9]{14}|[0-9]{10})[0-9]$)"
                            "(?<ShipperId>9[0-9]{8}|[0-8][0-9]{5})"
                            "(?<PackageId>[0-9]{14}|[0-9]{11}|[0-9]{10}|[0-9]{7}))" CD,
     .url = USPS_URL,
     .checksum = DR__CK_MOD10,
     .evens = 3,
     .odds = 1,
     .trust = DR__TRUST_CONTEXT},

    /* DHL */
    {.id = "dhl_express",
     .carrier = "dhl",
     .name = "DHL Express",
     .regex = SN "[0-9]{9,10})" CD,
     .url = DHL_URL,
     .checksum = DR__CK_MOD7,
     .trust = DR__TRUST_CONTEXT},
    {.id = "dhl_express_piece_id",
     .carrier = "dhl",
     .name = "DHL Express (Piece ID)",
     .regex = "J[A-Z]{2,3}" SN "[0-9]{9,10})",
     .url = DHL_URL},
    {.id = "dhl_ecommerce",
     .carrier = "dhl",
     .name = "DHL E-Commerce",
     .regex = "(?:GM|LX|RX|UV|CN|SG|TH|IN|HK|MY)" SN "[0-9][0-9A-Z]{9,38})",
     .url = DHL_URL,
     .trust = DR__TRUST_CONTEXT},
    {.id = "dhl_ecommerce_14",
     .carrier = "dhl",
     .name = "DHL E-Commerce (14)",
     .regex = SN "[0-9]{14})",
     .url = DHL_URL,
     .trust = DR__TRUST_CONTEXT},

    /* Amazon Logistics */
    {.id = "amazon_logistics",
     .carrier = "amazon",
     .name = "Amazon Logistics",
     .regex = "TB[ACM]" SN "[0-9]{12})",
     .url = "https://track.amazon.com/tracking/%s"},
    {.id = "amazon_international",
     .carrier = "amazon",
     .name = "Amazon International",
     .regex = "[AFC]" SN "[0-9]{10})",
     .trust = DR__TRUST_CONTEXT},

    /* OnTrac and LaserShip (one company since 2021) */
    {.id = "ontrac_c",
     .carrier = "ontrac",
     .name = "OnTrac",
     .regex = "C" SN "[0-9]{13})" CD,
     .url = ONTRAC_URL,
     .checksum = DR__CK_MOD10,
     .evens = 1,
     .odds = 2,
     .prepend = "4"},
    {.id = "ontrac_d",
     .carrier = "ontrac",
     .name = "OnTrac D",
     .regex = "D" SN "[0-9]{13})" CD,
     .url = ONTRAC_URL,
     .checksum = DR__CK_MOD10,
     .evens = 1,
     .odds = 2,
     .prepend = "5"},
    {.id = "lasership_lx",
     .carrier = "lasership",
     .name = "LaserShip LX",
     .regex = "L[AIEHNX][1-3]" SN "[0-9]{7})",
     .url = LS_URL},
    {.id = "lasership_1ls7",
     .carrier = "lasership",
     .name = "LaserShip 1LS7 (15)",
     .regex = "1LS7[12][0-9]{4}" SN "[0-9]{6})",
     .url = LS_URL},
    {.id = "lasership_1ls7_18",
     .carrier = "lasership",
     .name = "LaserShip 1LS7 (18)",
     .regex = "1LS7[12][0-9]{2}01[1234]" SN "[0-9]{6})-1",
     .url = LS_URL},
    {.id = "lasership_1lscx",
     .carrier = "lasership",
     .name = "LaserShip 1LSCX (15)",
     .regex = "1LSCX" SN "[0-9A-Z]{10})",
     .url = LS_URL},

    /* Canada Post domestic (its international numbers are S10) */
    {.id = "canada_post",
     .carrier = "canada_post",
     .name = "Canada Post (16)",
     .regex = SN "(?<OriginId>[0-9]{7})[0-9]{8})" CD,
     .url = "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=%s",
     .checksum = DR__CK_MOD10,
     .evens = 3,
     .odds = 1,
     .trust = DR__TRUST_CONTEXT},

    /* UPU S10: Royal Mail, Canada Post, USPS, ... international and registered items */
    {.id = "s10",
     .carrier = "s10",
     .name = "S10",
     .regex = "(?<ServiceType>[A-Z]{2})" SN "[0-9]{8})" CD "(?<CountryCode>[A-Z]{2})",
     .checksum = DR__CK_S10,
     .s10_country = 1},

    /* Purolator: 12 digits with a Luhn check, or 3 letters and 9 digits */
    {.id = "purolator_numeric",
     .carrier = "purolator",
     .name = "Purolator (12)",
     .regex = SN "[0-5][0-9]{10})" CD,
     .url = PURO_URL,
     .checksum = DR__CK_LUHN,
     .trust = DR__TRUST_CONTEXT},
    {.id = "purolator_alpha",
     .carrier = "purolator",
     .name = "Purolator (alpha + 9)",
     .regex = SN "[A-Z]{3}[0-9]{9})",
     .url = PURO_URL,
     .trust = DR__TRUST_CONTEXT},

    /* Canpar: service letter and 21 digits, no check digit */
    {.id = "canpar_22",
     .carrier = "canpar",
     .name = "Canpar (22)",
     .regex = SN "[CDKLSUXZ][0-9]{21})",
     .url = "https://www.canpar.com/en/tracking/track.htm?barcode=%s",
     .trust = DR__TRUST_CONTEXT},

    /* DPD: the 28-character parcel label number and the 14-digit parcel number, both with an
     * ISO 7064 MOD 37,36 check character */
    {.id = "dpd",
     .carrier = "dpd",
     .name = "DPD (28)",
     .regex = SN "(?<DestinationZip>[0-9]{7})[0-9]{14}(?<ServiceType>[0-9]{3})"
                 "(?<CountryCode>[0-9]{3}))(?<CheckDigit>[0-9A-Z])",
     .url = DPD_URL,
     .checksum = DR__CK_MOD37_36},
    {.id = "dpd_14",
     .carrier = "dpd",
     .name = "DPD (14)",
     .regex = SN "[0-9]{14})(?<CheckDigit>[0-9A-Z])",
     .url = DPD_URL,
     .checksum = DR__CK_MOD37_36,
     .trust = DR__TRUST_SHORT},

    /* Yodel (UK) domestic */
    {.id = "yodel",
     .carrier = "yodel",
     .name = "Yodel",
     .regex = "JJ?D" SN "[0-9]{16})",
     .url = "https://www.yodel.co.uk/tracking/%s"},

    /* Landmark Global LTN */
    {.id = "landmark_global",
     .carrier = "landmark",
     .name = "Landmark Global LTN",
     .regex = "LTN" SN "[0-9]{8})N1",
     .url = "https://track.landmarkglobal.com/?search=%s"},

    /* Old Dominion Freight Line PRO numbers, Luhn */
    {.id = "old_dominion",
     .carrier = "old_dominion",
     .name = "Old Dominion",
     .regex = SN "(?:77[78]|072)[0-9]{7})" CD,
     .url = ODFL_URL,
     .checksum = DR__CK_LUHN,
     .trust = DR__TRUST_CONTEXT},
    {.id = "old_dominion_guaranteed",
     .carrier = "old_dominion",
     .name = "Old Dominion Guaranteed Shipment",
     .regex = SN "80[0-9]{8})" CD,
     .url = ODFL_URL,
     .checksum = DR__CK_LUHN,
     .trust = DR__TRUST_CONTEXT},

    /* Spee-Dee Delivery */
    {.id = "speedee",
     .carrier = "speedee",
     .name = "Spee-Dee (20)",
     .regex = "SP" SN "[0-9]{18})",
     .url = "https://www.speedeedelivery.com/track/?tracking=%s"},

    /* YunExpress */
    {.id = "yunexpress",
     .carrier = "yunexpress",
     .name = "YunExpress",
     .regex = "YT" SN "[0-9]{16})",
     .url = "https://www.yuntrack.com/parcelTracking?id=%s"},

    /* GOFO Express (US) */
    {.id = "gofo_us",
     .carrier = "gofo",
     .name = "GOFO Express (US)",
     .regex = "GFUS" SN "[0-9]{14})",
     .url = "https://www.gofoexpress.com/tracking.html?searchID=%s"},
};

const size_t dr__format_count = sizeof(dr__formats) / sizeof(dr__formats[0]);

static int cmp_operator(const void *key, const void *elem)
{
    const struct dr__s10_operator *op = elem;
    return strcmp(key, op->code);
}

const char *dr__s10_operator(const char *cc)
{
    const struct dr__s10_operator *op;

    op = bsearch(cc, dr__s10_operators, dr__s10_operator_count, sizeof(*op), cmp_operator);
    return op ? op->name : NULL;
}

static const struct {
    const char *cc, *carrier;
} s10_carriers[] = {
    {"AU", "auspost"},    {"CA", "canada_post"},   {"CH", "swiss_post"}, {"DE", "deutsche_post"},
    {"ES", "correos"},    {"FR", "la_poste"},      {"GB", "royal_mail"}, {"IT", "poste_italiane"},
    {"NL", "postnl"},     {"PL", "poczta_polska"}, {"US", "usps"},       {"BE", "bpost"},
    {"CN", "china_post"}, {"JP", "japan_post"},    {"IE", "an_post"},
};

const char *dr__s10_carrier(const char *cc)
{
    for (size_t i = 0; i < sizeof(s10_carriers) / sizeof(s10_carriers[0]); i++) {
        if (strcmp(s10_carriers[i].cc, cc) == 0) {
            return s10_carriers[i].carrier;
        }
    }
    return "s10";
}

const char *dr__format_carrier(const char *code)
{
    if (strcmp(code, "s10") == 0) {
        return "s10";
    }
    for (size_t i = 0; i < sizeof(s10_carriers) / sizeof(s10_carriers[0]); i++) {
        if (strcmp(s10_carriers[i].carrier, code) == 0) {
            return s10_carriers[i].carrier;
        }
    }
    for (size_t i = 0; i < dr__format_count; i++) {
        if (strcmp(dr__formats[i].carrier, code) == 0) {
            return dr__formats[i].carrier;
        }
    }
    return NULL;
}
