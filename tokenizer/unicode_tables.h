// unicode_tables.h - the tables scripts/gen_unicode_tables.py generates into
// unicode_tables.c (from Debian's unicode-data). Only unicode.c reads them.
#ifndef LLM_UNICODE_TABLES_H
#define LLM_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

extern const char uni_data_version[]; // Unicode version of the property ranges
extern const char uni_nfc_version[];  // Unicode version of the NFC tables

// (first code point << 8) | UNI_* bits, ascending; a range runs to the next entry.
extern const uint32_t uni_prop_ranges[];
extern const size_t uni_prop_ranges_len;
// UNI_* bits of U+0000..U+007F.
extern const uint8_t uni_ascii_props[128];
// (first code point << 8) | canonical combining class, ascending.
extern const uint32_t uni_ccc_ranges[];
extern const size_t uni_ccc_ranges_len;
// {code point, first, second or 0}: one level of canonical decomposition, by code point.
extern const uint32_t uni_decomp[][3];
extern const size_t uni_decomp_len;
// {first, second, composite}: primary composites, sorted by (first, second).
extern const uint32_t uni_comp[][3];
extern const size_t uni_comp_len;

#endif
