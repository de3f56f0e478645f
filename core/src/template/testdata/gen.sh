#!/usr/bin/env bash
# Regenerates the template filter fixtures (run from this folder; needs openssl 3 and python3).
# Committed output: the tests compare filter results with what OpenSSL made independently.
set -euo pipefail
days=36500
cat > ext.cnf <<'CNF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:app.example.com,DNS:*.app.example.com,IP:10.0.0.1,IP:2001:db8::1,email:ops@example.com,URI:spiffe://example.com/app
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out root.key 2>/dev/null
openssl req -x509 -new -key root.key -subj "/CN=kuvert test root" -days $days -out root.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out int.key
openssl req -new -key int.key -subj "/CN=kuvert test intermediate" -out int.csr
openssl x509 -req -in int.csr -CA root.crt -CAkey root.key -set_serial 2 -days $days \
  -extfile ext.cnf -extensions ca -out int.crt 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out leaf.key 2>/dev/null
openssl req -new -key leaf.key -subj "/CN=app.example.com" -out leaf.csr
openssl x509 -req -in leaf.csr -CA int.crt -CAkey int.key -set_serial 3 -days $days \
  -extfile ext.cnf -extensions leaf -out leaf.crt 2>/dev/null
openssl rsa -in leaf.key -traditional -out leaf.rsa.key 2>/dev/null
openssl ec -in int.key -out int.ec.key 2>/dev/null
openssl pkey -in int.key -out int.pkcs8.key
cat leaf.crt int.crt root.crt > chain.crt
# PKCS#12: modern (AES-256/SHA-256, OpenSSL 3 default), legacy (RC2/3DES/SHA-1), no password.
openssl pkcs12 -export -inkey leaf.key -in leaf.crt -certfile <(cat int.crt root.crt) \
  -passout pass:changeit -out modern.p12
openssl pkcs12 -export -legacy -inkey leaf.key -in leaf.crt -certfile <(cat int.crt root.crt) \
  -passout pass:changeit -out legacy.p12
openssl pkcs12 -export -inkey int.key -in int.crt -passout pass: -out nopass.p12
# RSA ciphertexts of "hello kuvert".
printf 'hello kuvert' > plain.txt
openssl pkeyutl -encrypt -pubin -inkey <(openssl pkey -in leaf.key -pubout) -in plain.txt \
  -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -out oaep256.bin
openssl pkeyutl -encrypt -pubin -inkey <(openssl pkey -in leaf.key -pubout) -in plain.txt \
  -pkeyopt rsa_padding_mode:oaep -out oaep1.bin
openssl pkeyutl -encrypt -pubin -inkey <(openssl pkey -in leaf.key -pubout) -in plain.txt \
  -pkeyopt rsa_padding_mode:pkcs1 -out pkcs1.bin
openssl pkey -in leaf.key -pubout -out leaf.pub
openssl pkey -in int.key -pubout -out int.pub
# JWKs from the keys' components (independent of the code under test).
python3 - <<'PY'
import base64, json, re, subprocess
def b64u(n):
    b = n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def fields(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    vals, name = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\w+):\s*(\S.*)?$", line)
        if m:
            name = m.group(1); vals[name] = m.group(2) or ""
        elif name and line.startswith(" "):
            vals[name] += line.strip()
    return vals
def num(v): return int(re.sub(r"[^0-9a-f]", "", v.lower()), 16)
r = fields(["openssl", "rsa", "-in", "leaf.key", "-text", "-noout"])
rsa = {"kty": "RSA", "n": b64u(num(r["modulus"])), "e": b64u(int(r["publicExponent"].split()[0])),
       "d": b64u(num(r["privateExponent"])), "p": b64u(num(r["prime1"])), "q": b64u(num(r["prime2"])),
       "dp": b64u(num(r["exponent1"])), "dq": b64u(num(r["exponent2"])), "qi": b64u(num(r["coefficient"]))}
json.dump(rsa, open("leaf.jwk.json", "w"))
e = fields(["openssl", "ec", "-in", "int.key", "-text", "-noout"])
pub = bytes.fromhex(re.sub(r"[^0-9a-f]", "", e["pub"]))
d = bytes.fromhex(re.sub(r"[^0-9a-f]", "", e["priv"])).rjust(32, b"\0")[-32:]
ec = {"kty": "EC", "crv": "P-256", "x": base64.urlsafe_b64encode(pub[1:33]).rstrip(b"=").decode(),
      "y": base64.urlsafe_b64encode(pub[33:65]).rstrip(b"=").decode(),
      "d": base64.urlsafe_b64encode(d).rstrip(b"=").decode()}
json.dump(ec, open("int.jwk.json", "w"))
PY
rm -f ext.cnf int.csr leaf.csr root.srl int.srl plain.txt root.key
# pkcs12_cert order (issue 18): ESO keeps the keystore's order when a certificate belongs to no
# chain, and orders leaf -> root otherwise (as ESO's own multibag/disjunct fixtures).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout disjunct.key \
  -subj "/CN=kuvert test disjunct root" -days $days -out disjunct.crt \
  -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
rm disjunct.key
cat root.crt int.crt disjunct.crt > dchain.pem
openssl pkcs12 -export -in leaf.crt -certfile dchain.pem -inkey leaf.key -out disjunct.p12 -password pass:
cat root.crt int.crt > ichain.pem
openssl pkcs12 -export -in leaf.crt -certfile ichain.pem -inkey leaf.key -out multibag.p12 -password pass:
rm dchain.pem ichain.pem
# JWKs beyond P-256 (issue 18): OpenSSL's keys and PEMs; the JWK members taken from their DER.
for c in P-384 P-521; do
  n=$(echo $c | tr -d - | tr P p)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:$c -out $n.key
  openssl pkey -in $n.key -pubout -out $n.pub
done
openssl genpkey -algorithm ED25519 -out ed25519.key
openssl pkey -in ed25519.key -pubout -out ed25519.pub
python3 - <<'PY'
import base64, json, subprocess
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
der = lambda *a: subprocess.run(["openssl", "pkey", *a, "-outform", "DER"], capture_output=True).stdout
for n, crv, size in (("p384", "P-384", 48), ("p521", "P-521", 66)):
    d = der("-in", n + ".key"); i = d.index(bytes([4, size])); pub = d[-(2 * size + 1):]
    json.dump({"kty": "EC", "crv": crv, "x": b(pub[1:1 + size]), "y": b(pub[1 + size:]),
               "d": b(d[i + 2:i + 2 + size])}, open(n + ".jwk.json", "w"))
json.dump({"kty": "OKP", "crv": "Ed25519", "x": b(der("-in", "ed25519.key", "-pubout")[-32:]),
           "d": b(der("-in", "ed25519.key")[-32:])}, open("ed25519.jwk.json", "w"))
PY
