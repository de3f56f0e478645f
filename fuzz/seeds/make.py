#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the tests' own inputs: template
strings from core's template and engine tests, the `kuvert render` corpus (tests/render) and
examples/, property paths and documents, decoding and key-conversion cases, and rewrite specs.

Run from the repository root: `python3 fuzz/seeds/make.py`. Names are content hashes, so
running it again changes nothing unless the tests changed."""
import glob
import hashlib
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def rust_strings(path):
    """String literals of a Rust file: raw r#"..."# and plain "..." (escapes decoded)."""
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r'r(#+)"(.*?)"\1', text, re.S):
        yield m.group(2)
    for m in re.finditer(r'(?<![r#\w])"((?:[^"\\\n]|\\.)*)"', text):
        try:
            yield json.loads('"' + m.group(1).replace("\\'", "'") + '"')
        except ValueError:
            pass


def read(path):
    return open(os.path.join(ROOT, path), encoding="utf-8").read()


# Templates: every literal with a Jinja tag in the template and engine tests, with the default
# delimiters (selector byte 0); those written with [[ ]] get selector 2.
sources = glob.glob(os.path.join(ROOT, "core/src/template/**/*.rs"), recursive=True)
sources += glob.glob(os.path.join(ROOT, "core/src/engine/**/*.rs"), recursive=True)
for path in sorted(sources):
    for s in rust_strings(path):
        if "{{" in s or "{%" in s:
            put("template", b"\x00" + s.encode())
        elif "[[" in s and "]]" in s:
            put("template", b"\x02" + s.encode())
            put("rewrite", json.dumps({"rewrite": [{"transform": {"template": s}}], "data": {"a-b": "1"}}))

# Templates inside the render corpus and examples (values of `template` maps and `transform`).
yaml_files = sorted(glob.glob(os.path.join(ROOT, "tests/render/*/input.yaml")))
yaml_files += sorted(glob.glob(os.path.join(ROOT, "examples/**/*.yaml"), recursive=True))
for path in yaml_files:
    text = open(path, encoding="utf-8").read()
    put("manifest", text)
    for m in re.finditer(r"(\{\{.*?\}\}|\{%.*?%\})", text):
        put("template", b"\x00" + m.group(1).encode())
    for m in re.finditer(r"\|-?\n((?:[ ]{8,}.*\n)+)", text):
        block = "\n".join(line.strip() for line in m.group(1).splitlines())
        if "{{" in block or "{%" in block:
            put("template", b"\x00" + block.encode())

# Property paths (core/src/engine/property.rs tests, tests/render/property-paths).
doc = {"db": {"user": "app", "port": 5432, "tls.crt": "PEM"}, "items": [{"n": 1}],
       "config": '{"db":{"host":"pg","port":5432}}', "tls.crt": "top", "a": {"b": [1, {"c": "d"}]}}
for path in ["a.b.c", "password", 'a.["tls.crt"]', 'a["tls.crt"]', '["tls.crt"]', "['tls.crt'].x",
             'a.["q\\"uote"]', "items[0].name", "db.user", 'db.["tls.crt"]', "items.0.n",
             "items[0].n", "db.missing", "db.user.deeper", "tls.crt", "config.db.host",
             "config.db.port", "a.b.1.c", "", ".a", "a.", "a..b", 'a.["x', "a[x]", '["x"]y',
             '["\\q"]']:
    put("property", path.encode() + b"\x00" + json.dumps(doc).encode())

# Decoding (core/src/engine/decode.rs tests).
for value in [b"aGk=", b"aGVsbG8=", b"aGVs\nbG8=\n", b"aGVsbG8", b"not base64!", b"-_8=", b"-_8",
              b"+/8=", b"plain text!", b"example", b"\r\n", b""]:
    put("decode", value)

# Key conversion (core/src/engine/keys.rs tests): selector 0 Default, 1 Unicode.
names = ["db/password", "tls.crt", "caf\u00e9", "a b", "a_b", "_U00e9_", "\u00e9", "x" * 260, ".", ".."]
for selector in (b"\x00", b"\x01"):
    put("keys", selector + "\x00".join(names).encode())
    put("keys", selector + "path/to:key@v1".encode())

# Rewrites (core/src/engine/rewrite.rs tests and the render corpus), as JSON seeds.
for spec, data in [
    ([{"regexp": {"source": "^db-(.*)$", "target": "$1"}}], {"db-user": "app", "db-pass": "x"}),
    ([{"regexp": {"source": "(?P<env>\\w+)/(?P<k>.*)", "target": "${k}_${env}"}}], {"prod/user": "u"}),
    ([{"regexp": {"source": "[", "target": ""}}], {"k": "v"}),
    ([{"transform": {"template": "{{ value | upper }}"}}], {"user": "u", "pass": "p"}),
    ([{"transform": {"template": "{{ value | replace('/', '_') }}"}}], {"a/b": "1"}),
    ([{"merge": {}}], {"a": '{"x":1,"y":{"z":2}}', "b": '{"w":"v"}'}),
    ([{"merge": {"strategy": "JSON", "into": "all"}}], {"a": '{"x":1}', "b": '{"y":2}'}),
    ([{"merge": {"priority": ["b", "c"], "priorityPolicy": "IgnoreNotFound",
                 "conflictPolicy": "Ignore"}}], {"a": '{"x":1}', "b": '{"x":2}'}),
    ([{"merge": {"priority": ["missing"]}}], {"a": '{"x":1}'}),
    ([{"merge": {}}, {"regexp": {"source": "x", "target": "y"}},
      {"transform": {"template": "p-{{ value }}"}}], {"a": '{"x":1}'}),
    ([{"regexp": {"source": "a", "target": "b"}, "transform": {"template": "x"}}], {"a": "1"}),
]:
    put("rewrite", json.dumps({"rewrite": spec, "data": data}))

def dict_entry(word):
    """A libFuzzer dictionary line: only backslash, quote and hex (xNN) escapes are understood."""
    out = []
    for b in word.encode():
        c = chr(b)
        if c in '\\"':
            out.append("\\" + c)
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\x%02X" % b)
    return '"' + "".join(out) + '"'


# The template dictionary: every filter and function name (kuvert's, sprig's, ESO's), Jinja's
# keywords and built-ins, the fuzz context's variables and a few sizes that reach limits.
names = set()
for path in glob.glob(os.path.join(ROOT, "core/src/template/sprig/*.rs")) + [
        os.path.join(ROOT, "core/src/template/filters/mod.rs"),
        os.path.join(ROOT, "core/src/template/filters/eso.rs")]:
    text = open(path, encoding="utf-8").read()
    names.update(re.findall(r'\(\s*"([A-Za-z_][A-Za-z0-9_]*)",\s*(?:\||[a-z_]+::|[a-z_]+\b)', text))
    names.update(re.findall(r'add_(?:filter|function)\(\s*"([A-Za-z_0-9]+)"', text))
names.update("""for in endfor if elif else endif set endset macro endmacro call endcall filter endfilter
    with endwith namespace loop range recursive not and or is defined none true false tojson upper
    lower trim default replace indent join length map select sort items dict list batch format int
    float string first last unique reverse wordcount center title attr sum round abs max min slice
    split lines urlencode safe escape value data password user config yaml bin b64 jwk p12 n
    tls.crt tls.key""".split())
tokens = ["{{", "}}", "{%", "%}", "{#", "#}", "[[", "]]", "|", "~", "**", "//", "\n", '"%d"',
          '"%1048576d"', '"\\n"', "1048576", "65536", "-1", "99999999999999999999"]
with open(os.path.join(ROOT, "fuzz", "dict", "template.dict"), "w", encoding="utf-8") as f:
    f.write("# Written by fuzz/seeds/make.py: template names, keywords and tokens.\n")
    for word in sorted(names) + tokens:
        f.write(dict_entry(word) + "\n")
