#!/usr/bin/env python3
"""Generates tokenizer/unicode_tables.c from Debian's unicode-data package.

    python3 scripts/gen_unicode_tables.py [UCD_DIR] > tokenizer/unicode_tables.c

UCD_DIR defaults to /usr/share/unicode (Debian package `unicode-data`). Reads
UnicodeData.txt, PropList.txt, DerivedCoreProperties.txt,
DerivedNormalizationProps.txt and DerivedAge.txt, and writes compact tables:

- uni_prop_ranges: ranges of code points sharing the same property bits (letter
  \\p{L}, number \\p{N}, White_Space, Rust-regex word \\w, and "may need NFC
  work"), as (start << 8 | bits); a range runs to the next start;
- uni_ascii_props: the same bits for U+0000..U+007F, for the ASCII fast path.
- uni_ccc_ranges: ranges of equal canonical combining class, (start << 8 | ccc).
- uni_decomp: canonical decompositions, one level: {cp, first, second or 0}.
- uni_comp: primary composites: {first, second, composite}, sorted.

The NFC tables keep only characters assigned up to NFC_VERSION: the reference
implementation (Hugging Face `tokenizers`, through its vendored
unicode-normalization tables) normalizes with Unicode 9.0 data, and tokens must
match it. The property ranges use everything the package knows.
"""
import os
import sys

NFC_VERSION = (9, 0)

# Property bits; keep in sync with tokenizer/unicode.h.
UNI_L, UNI_N, UNI_WS, UNI_WORD, UNI_NFC = 1, 2, 4, 8, 16


def ranges_of(path, wanted):
    """Yields (first, last, value) of `first..last ; value` lines whose value is in wanted."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split(";")]
            if fields[1] not in wanted:
                continue
            a, _, b = fields[0].partition("..")
            yield int(a, 16), int(b or a, 16), fields[1]


def load(ucd):
    gc, ccc, decomp = {}, {}, {}
    first = None
    with open(os.path.join(ucd, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fld = line.rstrip("\n").split(";")
            cp = int(fld[0], 16)
            if fld[1].endswith(", First>"):
                first = cp
                continue
            span = range(first, cp + 1) if fld[1].endswith(", Last>") else (cp,)
            for c in span:
                gc[c] = fld[2]
                if int(fld[3]):
                    ccc[c] = int(fld[3])
            if fld[5] and not fld[5].startswith("<"):
                decomp[cp] = [int(x, 16) for x in fld[5].split()]
    props = {}
    for name in ("PropList.txt", "DerivedCoreProperties.txt", "DerivedNormalizationProps.txt"):
        for a, b, p in ranges_of(
            os.path.join(ucd, name),
            {"White_Space", "Join_Control", "Alphabetic", "Full_Composition_Exclusion"},
        ):
            props.setdefault(p, set()).update(range(a, b + 1))
    age = {}
    for a, b, v in ranges_of(
        os.path.join(ucd, "DerivedAge.txt"),
        {f"{x}.{y}" for x in range(1, 40) for y in range(0, 10)},
    ):
        for c in range(a, b + 1):
            age[c] = tuple(int(x) for x in v.split("."))
    return gc, ccc, decomp, props, age


def ucd_version(ucd):
    with open(os.path.join(ucd, "DerivedAge.txt"), encoding="utf-8") as f:
        return f.readline().split("-")[1].rsplit(".", 1)[0]


def emit_array(out, decl, items, per_line):
    out.append(f"{decl} = {{")
    for i in range(0, len(items), per_line):
        out.append("    " + " ".join(x + "," for x in items[i : i + per_line]))
    out.append("};")


def main():
    ucd = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    gc, ccc, decomp, props, age = load(ucd)
    old = lambda c: age.get(c, (99, 0)) <= NFC_VERSION

    # NFC data limited to the reference's Unicode version.
    ccc_n = {c: v for c, v in ccc.items() if old(c)}
    decomp_n = {c: d for c, d in decomp.items() if old(c)}
    excluded = props["Full_Composition_Exclusion"]
    comp = sorted(
        (d[0], d[1], c) for c, d in decomp_n.items() if len(d) == 2 and c not in excluded
    )
    seconds = {b for _, b, _ in comp} | set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    nfc_check = set(ccc_n) | seconds | {c for c in decomp_n if c in excluded}

    word_gc = {"Mn", "Mc", "Me", "Nd", "Pc"}
    alpha, ws, join = props["Alphabetic"], props["White_Space"], props["Join_Control"]

    def bits(c):
        g = gc.get(c, "Cn")
        v = 0
        if g[0] == "L":
            v |= UNI_L
        if g[0] == "N":
            v |= UNI_N
        if c in ws:
            v |= UNI_WS
        if c in alpha or g in word_gc or c in join:
            v |= UNI_WORD
        if c in nfc_check:
            v |= UNI_NFC
        return v

    prop_ranges, prev = [], None
    ccc_ranges, prev_ccc = [], None
    for c in range(0x110000):
        v = bits(c)
        if v != prev:
            prop_ranges.append(f"0x{c:06X}{v:02X}")
            prev = v
        k = ccc_n.get(c, 0)
        if k != prev_ccc:
            ccc_ranges.append(f"0x{c:06X}{k:02X}")
            prev_ccc = k

    out = [
        "// unicode_tables.c - GENERATED by scripts/gen_unicode_tables.py from Debian's",
        f"// unicode-data (Unicode {ucd_version(ucd)}); do not edit. NFC tables are limited to",
        f"// Unicode {NFC_VERSION[0]}.{NFC_VERSION[1]}, the data the reference tokenizer normalizes with.",
        "// clang-format off",
        '#include "unicode_tables.h"',
        "",
        f'const char uni_data_version[] = "{ucd_version(ucd)}";',
        f'const char uni_nfc_version[] = "{NFC_VERSION[0]}.{NFC_VERSION[1]}";',
        "",
        "// (first code point << 8) | property bits; a range runs to the next entry.",
    ]
    emit_array(out, f"const uint32_t uni_prop_ranges[{len(prop_ranges)}]", prop_ranges, 8)
    out.append(f"const size_t uni_prop_ranges_len = {len(prop_ranges)};")
    out.append("")
    out.append("// Property bits of U+0000..U+007F, for the ASCII fast path.")
    emit_array(out, "const uint8_t uni_ascii_props[128]", [f"0x{bits(c):02X}" for c in range(128)], 16)
    out.append("")
    out.append("// (first code point << 8) | canonical combining class.")
    emit_array(out, f"const uint32_t uni_ccc_ranges[{len(ccc_ranges)}]", ccc_ranges, 8)
    out.append(f"const size_t uni_ccc_ranges_len = {len(ccc_ranges)};")
    out.append("")
    out.append("// {code point, first, second or 0}: one level of canonical decomposition.")
    items = [
        f"{{0x{c:X}, 0x{d[0]:X}, 0x{d[1] if len(d) > 1 else 0:X}}}" for c, d in sorted(decomp_n.items())
    ]
    emit_array(out, f"const uint32_t uni_decomp[{len(items)}][3]", items, 4)
    out.append(f"const size_t uni_decomp_len = {len(items)};")
    out.append("")
    out.append("// {first, second, composite}, sorted by (first, second): primary composites.")
    items = [f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}" for a, b, c in comp]
    emit_array(out, f"const uint32_t uni_comp[{len(items)}][3]", items, 4)
    out.append(f"const size_t uni_comp_len = {len(items)};")
    out.append("// clang-format on")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
