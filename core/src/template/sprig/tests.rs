//! sprig's and Go's functions, each checked against the output sprig's own tests, sprig's
//! documentation or Go's documentation give for the same input (never kuvert's own output).

use std::collections::BTreeMap;

use crate::secret::SecretBytes;
use crate::template::{TemplateContext, TemplateError, render};

fn ctx(vars: &[(&str, &str)]) -> TemplateContext {
    let data: BTreeMap<String, SecretBytes> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), SecretBytes::new(v.as_bytes().to_vec())))
        .collect();
    TemplateContext::from_data(&data)
        .with_now("2024-03-05T07:08:09Z".parse().expect("a valid timestamp"))
}

fn run_with(template: &str, vars: &[(&str, &str)]) -> String {
    let out = render(template, &ctx(vars), None)
        .unwrap_or_else(|err| panic!("`{template}` failed: {err}"));
    String::from_utf8(out.expose().to_vec()).expect("UTF-8 output")
}

fn run(template: &str) -> String {
    run_with(template, &[])
}

fn fails(template: &str, vars: &[(&str, &str)]) -> TemplateError {
    match render(template, &ctx(vars), None) {
        Ok(_) => panic!("`{template}` rendered"),
        Err(err) => err,
    }
}

#[test]
fn string_functions_follow_sprig() {
    // Vectors from sprig's strings_test.go and its documentation.
    assert_eq!(run(r#"{{ quote("a", "b", "c") }}"#), r#""a" "b" "c""#);
    assert_eq!(
        run(r#"{{ quote("\"a\"", "b", "c") }}"#),
        r#""\"a\"" "b" "c""#
    );
    assert_eq!(run("{{ quote(1, 2, 3) }}"), r#""1" "2" "3""#);
    assert_eq!(run(r#"{{ squote("a", "b", "c") }}"#), "'a' 'b' 'c'");
    assert_eq!(run("{{ squote(1, 2, 3) }}"), "'1' '2' '3'");
    assert_eq!(run(r#"{{ "fooo" | substr(0, 3) }}"#), "foo");
    assert_eq!(run(r#"{{ "foo" | substr(0, 10) }}"#), "foo");
    assert_eq!(run(r#"{{ "foooooo" | trunc(3) }}"#), "foo");
    assert_eq!(run(r#"{{ "baaaaaar" | trunc(-3) }}"#), "aar");
    assert_eq!(run(r#"{{ "baaaaaar" | trunc(-999) }}"#), "baaaaaar");
    assert_eq!(run(r#"{{ "baaaaaz" | trunc(0) }}"#), "");
    assert_eq!(
        run(r#"{% set v = split("$", "foo$bar$baz") %}{{ v._0 }}"#),
        "foo"
    );
    assert_eq!(
        run(r#"{% set v = split("$", "foo$bar$baz") %}{{ v._2 }}"#),
        "baz"
    );
    assert_eq!(
        run(r#"{% set v = "foo$bar$baz" | splitn("$", 2) %}{{ v._1 }}"#),
        "bar$baz"
    );
    assert_eq!(
        run(r#"{{ join("-", splitList("$", "foo$bar$baz")) }}"#),
        "foo-bar-baz"
    );
    assert_eq!(run(r#"{{ join("-", tuple("a", "b", "c")) }}"#), "a-b-c");
    assert_eq!(run(r#"{{ join("-", tuple(1, 2, 3)) }}"#), "1-2-3");
    assert_eq!(run(r#"{{ join("-", "abc") }}"#), "abc");
    assert_eq!(run(r#"{{ join("-", list("1", none, "2")) }}"#), "1-2");
    assert_eq!(run(r#"{% set b = "b" %}{{ "c" | cat("a", b) }}"#), "a b c");
    assert_eq!(run(r#"{{ indent(4, "a\nb\nc") }}"#), "    a\n    b\n    c");
    assert_eq!(
        run(r#"{{ nindent(4, "a\nb\nc") }}"#),
        "\n    a\n    b\n    c"
    );
    assert_eq!(run(r#"{{ trimAll("$", "$5.00$") }}"#), "5.00");
    assert_eq!(run(r#"{{ "v1.2.3" | trimPrefix("v") }}"#), "1.2.3");
    assert_eq!(run(r#"{{ trimSuffix("-", "hello-") }}"#), "hello");
    assert_eq!(run(r#"{{ hasPrefix("cat", "catch") | toString }}"#), "true");
    assert_eq!(
        run(r#"{{ "catch" | hasSuffix("cat") | toString }}"#),
        "false"
    );
    assert_eq!(
        run(r#"{{ contains("cat", "catch") }}"#),
        "True",
        "a bool prints as Jinja prints it"
    );
    assert_eq!(run(r#"{{ repeat(3, "hello") }}"#), "hellohellohello");
    assert_eq!(run(r#"{{ nospace("hello w o r l d") }}"#), "helloworld");
    assert_eq!(run(r#"{{ title("hello world") }}"#), "Hello World");
    assert_eq!(
        run(r#"{{ replace(" ", "-", "I Am Henry VIII") }}"#),
        "I-Am-Henry-VIII"
    );
    assert_eq!(
        run(r#"{{ upper("hello") }}{{ lower("HELLO") }}{{ trim("  x  ") }}"#),
        "HELLOhellox"
    );
}

#[test]
fn jinja_builtins_keep_their_meaning_as_filters() {
    // `indent`, `default` and `join` stay Jinja's filters; the functions are sprig's.
    assert_eq!(run(r#"{{ "a\nb" | indent(2) }}"#), "a\n  b");
    assert_eq!(run(r#"{{ indent(2, "a\nb") }}"#), "  a\n  b");
    assert_eq!(
        run(r#"{{ "" | default("x") }}|{{ default("x", "") }}"#),
        "|x"
    );
    assert_eq!(run(r#"{{ ["a", "b"] | join(",") }}"#), "a,b");
}

#[test]
fn to_string_and_print_use_gos_formatting() {
    assert_eq!(run("{{ toString(42) }}"), "42");
    assert_eq!(run("{{ toString(true) }}"), "true");
    assert_eq!(run("{{ toString(none) }}"), "<nil>");
    assert_eq!(run("{{ toString(1.5) }}"), "1.5");
    assert_eq!(run("{{ toString(1000000.0) }}"), "1e+06");
    assert_eq!(run("{{ toString(list(1, \"a\")) }}"), "[1 a]");
    assert_eq!(
        run("{{ toString(dict(\"b\", 2, \"a\", 1)) }}"),
        "map[a:1 b:2]"
    );
    assert_eq!(run(r#"{{ print("a", 1, 2, "b") }}"#), "a1 2b");
    assert_eq!(run(r#"{{ println("a", 1) }}"#), "a 1\n");
    assert_eq!(
        run_with("{{ password | toString }}", &[("password", "s3cr3t")]),
        "s3cr3t"
    );
}

#[test]
fn printf_follows_go_fmt() {
    // Expected outputs from Go's fmt documentation.
    assert_eq!(run(r#"{{ printf("%s:%d", "host", 5432) }}"#), "host:5432");
    assert_eq!(run(r#"{{ printf("%q", "a\"b") }}"#), r#""a\"b""#);
    assert_eq!(
        run(r#"{{ printf("%v %v %v", true, none, list(1, 2)) }}"#),
        "true <nil> [1 2]"
    );
    assert_eq!(
        run(r#"{{ printf("%5d|%-5d|%05d", 42, 42, -42) }}"#),
        "   42|42   |-0042"
    );
    assert_eq!(
        run(r#"{{ printf("%x %X %o %b", 255, 255, 8, 5) }}"#),
        "ff FF 10 101"
    );
    assert_eq!(run(r#"{{ printf("%x", "hi") }}"#), "6869");
    assert_eq!(
        run(r#"{{ printf("%.2f %e", 3.14159, 1234.5678) }}"#),
        "3.14 1.234568e+03"
    );
    assert_eq!(
        run(r#"{{ printf("%.3s|%8s|%-4s|", "abcdef", "r", "l") }}"#),
        "abc|       r|l   |"
    );
    assert_eq!(run(r#"{{ printf("100%%") }}"#), "100%");
    assert_eq!(run(r#"{{ printf("%d", "x") }}"#), "%!d(string=x)");
    assert_eq!(run(r#"{{ printf("%s %s", "a") }}"#), "a %!s(MISSING)");
    assert_eq!(run(r#"{{ printf("%s", "a", 1) }}"#), "a%!(EXTRA int=1)");
    // A verb applies to each element of a list.
    assert_eq!(
        run(r#"{{ printf("%d|%q", list(1, 2), list("a", "b")) }}"#),
        r#"[1 2]|["a" "b"]"#
    );
    assert_eq!(
        run_with(
            r#"{{ printf("postgres://%s:%s@db", user, pass) }}"#,
            &[("user", "u"), ("pass", "p")]
        ),
        "postgres://u:p@db"
    );
}

#[test]
fn regex_functions_follow_sprig() {
    let email = r#""[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}""#;
    assert_eq!(
        run(&format!(
            r#"{{{{ regexMatch({email}, "test@acme.com") | toString }}}}"#
        )),
        "true"
    );
    assert_eq!(
        run(&format!(
            r#"{{{{ regexMatch({email}, "test@acme") | toString }}}}"#
        )),
        "false"
    );
    assert_eq!(run(r#"{{ regexFind("[a-zA-Z][1-9]", "abcd1234") }}"#), "d1");
    assert_eq!(
        run(r#"{{ regexFindAll("[2,4,6,8]", "123456789", -1) | join(",") }}"#),
        "2,4,6,8"
    );
    assert_eq!(
        run(r#"{{ regexFindAll("a{2}", "aaaaaaaa", 1) | length }}"#),
        "1"
    );
    assert_eq!(
        run(r#"{{ regexReplaceAll("a(x*)b", "-ab-axxb-", "${1}W") }}"#),
        "-W-xxW-"
    );
    assert_eq!(
        run(r#"{{ regexReplaceAllLiteral("a(x*)b", "-ab-axxb-", "${1}") }}"#),
        "-${1}-${1}-"
    );
    assert_eq!(
        run(r#"{{ regexSplit("z+", "pizza", -1) | join(",") }}"#),
        "pi,a"
    );
    assert_eq!(run(r#"{{ regexQuoteMeta("1.2.3") }}"#), r"1\.2\.3");
    // The pipeline form: the piped value is Go's *last* argument, here the replacement (as
    // in Go, where `.host | regexReplaceAll "re" ""` replaces in "" with .host).
    assert_eq!(
        run_with(
            r#"{{ host | regexReplaceAll("x", "axb") }}"#,
            &[("host", "db")]
        ),
        "adbb"
    );
}

#[test]
fn a_bad_regular_expression_fails_naming_the_function() {
    for template in [
        r#"{{ regexMatch("a(", "x") }}"#,
        r#"{{ regexFind("a(", secret) }}"#,
        r#"{{ regexReplaceAll("[", secret, "x") }}"#,
    ] {
        let err = fails(template, &[("secret", "hunter2")]);
        let text = err.to_string();
        assert!(text.contains("invalid regular expression"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(err.reason(), "TemplateFilter");
    }
}

#[test]
fn encodings_and_hashes_match_the_rfc_vectors() {
    assert_eq!(run(r#"{{ b32enc("coffee") }}"#), "MNXWMZTFMU======");
    assert_eq!(run(r#"{{ b32dec("MNXWMZTFMU======") }}"#), "coffee");
    assert_eq!(run(r#"{{ "636f66666565" | hexdec }}"#), "coffee");
    assert_eq!(
        run(r#"{{ b64enc("coffee") }}{{ b64dec("Y29mZmVl") }}"#),
        "Y29mZmVlcoffee"
    );
    assert_eq!(
        run(r#"{{ sha256sum("abc") }}"#),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        run(r#"{{ sha1sum("abc") }}"#),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(run(r#"{{ adler32sum("abc") }}"#), "38600999");
    assert!(run(r#"{{ sha512sum("abc") }}"#).starts_with("ddaf35a193617aba"));
}

#[test]
fn invalid_encodings_fail_without_the_value() {
    for template in ["{{ b64dec(s) }}", "{{ s | b32dec }}", "{{ hexdec(s) }}"] {
        let text = fails(template, &[("s", "zz!not-valid")]).to_string();
        assert!(text.contains("invalid"), "{text}");
        assert!(!text.contains("zz!not-valid"), "{text}");
    }
}

#[test]
fn htpasswd_writes_apache_lines() {
    // `{SHA}` is base64(SHA-1(password)), Apache's format.
    assert_eq!(
        run(r#"{{ htpasswd("user", "secret", "sha") }}"#),
        "user:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="
    );
    let line = run(r#"{{ htpasswd("user", "secret", "bcrypt") }}"#);
    let hash = line
        .strip_prefix("user:$2a$10$")
        .expect("a $2a$ cost-10 bcrypt hash");
    assert_eq!(hash.len(), 53);
    assert!(bcrypt::verify("secret", line.strip_prefix("user:").unwrap()).unwrap());
    // Deterministic: a refresh renders the same line.
    assert_eq!(line, run(r#"{{ htpasswd("user", "secret", "bcrypt") }}"#));
    let text = fails(r#"{{ htpasswd("a:b", s, "sha") }}"#, &[("s", "pw")]).to_string();
    assert!(text.contains("username contains ':'"), "{text}");
}

#[test]
fn paths_and_numbers() {
    assert_eq!(
        run(r#"{{ ext("cert.pem") }}|{{ base("/a/b.txt") }}|{{ dir("/a/b.txt") }}"#),
        ".pem|b.txt|/a"
    );
    assert_eq!(
        run(
            r#"{{ add(1, 2, "3") }} {{ sub(5, 3) }} {{ mul(2, 3, 4) }} {{ div(7, 2) }} {{ mod(7, 2) }}"#
        ),
        "6 2 24 3 1"
    );
    assert_eq!(
        run(r#"{{ atoi("42") + 1 }} {{ int("0x1F") }} {{ max(1, 5, 3) }}"#),
        "43 31 5"
    );
    assert!(
        fails("{{ div(1, 0) }}", &[])
            .to_string()
            .contains("divide by zero")
    );
}

#[test]
fn defaults_follow_sprigs_empty() {
    assert_eq!(
        run(r#"{{ default("foo", "") }}|{{ default("foo", "bar") }}|{{ default("foo", 0) }}"#),
        "foo|bar|foo"
    );
    assert_eq!(
        run(r#"{{ "" | default("foo") }}"#),
        "",
        "the Jinja filter: only undefined"
    );
    assert_eq!(
        run(r#"{{ print(empty(""), empty(list()), empty(false), empty("x")) }}"#),
        "true true true false"
    );
    assert_eq!(run(r#"{{ coalesce("", none, "c", "d") }}"#), "c");
    assert_eq!(
        run(r#"{{ ternary("yes", "no", true) }}{{ ternary("yes", "no", false) }}"#),
        "yesno"
    );
    assert_eq!(run(r#"{{ print(all("a", 1), any("", 0)) }}"#), "true false");
}

#[test]
fn lists_and_dicts() {
    assert_eq!(run(r#"{{ toString(append(list(1, 2), 3)) }}"#), "[1 2 3]");
    assert_eq!(run(r#"{{ toString(prepend(list(1, 2), 0)) }}"#), "[0 1 2]");
    assert_eq!(
        run(r#"{{ first(list(1, 2)) }}{{ last(list(1, 2)) }}"#),
        "12"
    );
    assert_eq!(
        run(r#"{{ toString(uniq(list(1, 1, 2))) }} {{ toString(without(list(1, 2, 3), 2)) }}"#),
        "[1 2] [1 3]"
    );
    assert_eq!(
        run(r#"{{ has(2, list(1, 2)) | toString }} {{ toString(compact(list(1, "", 2))) }}"#),
        "true [1 2]"
    );
    assert_eq!(
        run(r#"{{ toString(sortAlpha(list("b", "a"))) }} {{ toString(until(3)) }}"#),
        "[a b] [0 1 2]"
    );
    assert_eq!(
        run(r#"{% set d = dict("name", "db", "port", 5432) %}{{ d.name }}:{{ get(d, "port") }}"#),
        "db:5432"
    );
    // Helm's idiom: `set` changes the dict in place.
    assert_eq!(
        run(
            r#"{% set d = dict() %}{% set _ = set(d, "k", "v") %}{{ hasKey(d, "k") | toString }} {{ toJson(d) }}"#
        ),
        r#"true {"k":"v"}"#
    );
    assert_eq!(
        run(r#"{{ toString(keys(dict("b", 1, "a", 2)) | sort) }}"#),
        "[a b]"
    );
    assert_eq!(
        run(
            r#"{{ toJson(pick(dict("a", 1, "b", 2), "a")) }} {{ toJson(omit(dict("a", 1, "b", 2), "a")) }}"#
        ),
        r#"{"a":1} {"b":2}"#
    );
    assert_eq!(
        run(
            r#"{{ toJson(merge(dict("a", 1), dict("a", 2, "b", 3))) }} {{ toJson(mergeOverwrite(dict("a", 1), dict("a", 2))) }}"#
        ),
        r#"{"a":1,"b":3} {"a":2}"#
    );
    assert_eq!(
        run(r#"{{ dig("a", "b", "none", fromJson("{\"a\":{\"b\":\"x\"}}")) }}"#),
        "x"
    );
    assert_eq!(
        run(r#"{{ index(dict("service-account-token", "t"), "service-account-token") }}"#),
        "t"
    );
    assert_eq!(
        run(r#"{{ index(list("a", "b"), 1) }} {{ len("abc") }} {{ len(list(1)) }}"#),
        "b 3 1"
    );
    assert!(
        fails(r#"{{ index(data, "missing") }}"#, &[("x", "y")])
            .to_string()
            .contains("no such key")
    );
    assert_eq!(
        run(r#"{{ print(eq(1, 1), eq("a", "b", "a"), lt(1, 2), ge("b", "a")) }}"#),
        "true true true true"
    );
}

#[test]
fn to_json_is_compact_and_escapes_html_as_go() {
    // Go's json.Marshal: compact, sorted keys, and <, >, & written as \u003c, \u003e, \u0026.
    assert_eq!(
        run(r#"{{ toJson(fromJson("{\"b\": [1, 2.5, true, null], \"a\": \"x\"}")) }}"#),
        r#"{"a":"x","b":[1,2.5,true,null]}"#
    );
    assert_eq!(run(r#"{{ toJson("<a&b>") }}"#), r#""\u003ca\u0026b\u003e""#);
    assert_eq!(run(r#"{{ toRawJson("<a&b>") }}"#), r#""<a&b>""#);
    assert_eq!(
        run(r#"{{ toJson("tab\there\nquote\"") }}"#),
        r#""tab\there\nquote\"""#
    );
    assert_eq!(
        run(r#"{{ toJson(1e21) }} {{ toJson(0.000001) }} {{ toJson(1e-7) }}"#),
        "1e+21 0.000001 1e-7"
    );
    assert_eq!(
        run(r#"{{ toPrettyJson(dict("a", list(1))) }}"#),
        "{\n  \"a\": [\n    1\n  ]\n}"
    );
    assert_eq!(
        run_with(r#"{{ password | toJson }}"#, &[("password", "p&w")]),
        r#""p\u0026w""#
    );
    let text = fails(r#"{{ fromJson(s) }}"#, &[("s", "{not json")]).to_string();
    assert!(text.contains("invalid JSON at line 1"), "{text}");
    assert!(!text.contains("not json"), "{text}");
}

#[test]
fn to_yaml_has_no_trailing_newline() {
    assert_eq!(
        run(r#"{{ toYaml(dict("a", 1, "b", "x")) }}|"#),
        "a: 1\nb: x|"
    );
    assert_eq!(run(r#"{{ fromYaml("a: 1\nb: [x]").b[0] }}"#), "x");
}

#[test]
fn dates_use_the_renders_clock_and_go_layouts() {
    assert_eq!(run(r#"{{ now() | date("2006-01-02") }}"#), "2024-03-05");
    assert_eq!(
        run(r#"{{ date("2006-01-02T15:04:05Z07:00", now()) }}"#),
        "2024-03-05T07:08:09Z"
    );
    assert_eq!(run(r#"{{ now() | unixEpoch }}"#), "1709622489");
    assert_eq!(run(r#"{{ now() }}"#), "2024-03-05 07:08:09 +0000 UTC");
    assert_eq!(
        run(r#"{{ now() | dateModify("-24h") | date("Jan 2") }}"#),
        "Mar 4"
    );
    assert_eq!(run(r#"{{ date("2006-01-02", 0) }}"#), "1970-01-01");
    assert_eq!(
        run(r#"{{ dateInZone("15:04 MST", now(), "UTC") }}"#),
        "07:08 UTC"
    );
    assert_eq!(run(r#"{{ duration(3665) }}"#), "1h1m5s");
    assert_eq!(run(r#"{{ toJson(now()) }}"#), r#""2024-03-05T07:08:09Z""#);
}

#[test]
fn fail_does_not_repeat_its_message() {
    let text = fails(r#"{{ fail("password was " ~ p) }}"#, &[("p", "hunter2")]).to_string();
    assert!(text.contains("the template called fail"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn eso_helpers_take_gos_argument_order() {
    let pem = "-----BEGIN CERTIFICATE-----\nMQ==\n-----END CERTIFICATE-----\n";
    let bundle =
        format!("junk\n{pem}-----BEGIN PRIVATE KEY-----\nMg==\n-----END PRIVATE KEY-----\n");
    assert_eq!(
        run_with(r#"{{ filterPEM("CERTIFICATE", b) }}"#, &[("b", &bundle)]),
        pem
    );
    assert_eq!(
        run_with(r#"{{ b | filterPEM("CERTIFICATE") }}"#, &[("b", &bundle)]),
        pem
    );
    assert_eq!(
        run_with(
            r#"{{ rsaDecrypt("None", "SHA256", c, "unused") }}"#,
            &[("c", "plain")]
        ),
        "plain"
    );
    assert!(
        fails(
            r#"{{ rsaDecrypt("PKCS1", "SHA256", c, k) }}"#,
            &[("c", "x"), ("k", "y")]
        )
        .to_string()
        .contains("unsupported scheme")
    );
}

#[test]
fn range_pairs_walks_as_gos_range() {
    assert_eq!(
        run(r#"{% for k, v in range_pairs(dict("b", 2, "a", 1)) %}{{ k }}={{ v }};{% endfor %}"#),
        "a=1;b=2;"
    );
    assert_eq!(
        run(r#"{% for i, v in range_pairs(list("x", "y")) %}{{ i }}{{ v }}{% endfor %}"#),
        "0x1y"
    );
    assert_eq!(
        run(r#"{% for i, _ in range_pairs(3) %}{{ i }}{% endfor %}"#),
        "012"
    );
}

#[test]
fn the_function_registry_answers_for_migrate() {
    assert!(crate::template::has_function("trimPrefix"));
    assert!(crate::template::has_function("pkcs12keyPass"));
    assert!(!crate::template::has_function("env"));
    assert!(crate::template::check("{{ x | upper }}", None).is_ok());
    assert!(crate::template::check("{{ x | }}", None).is_err());
}
