//! Tests of rendering, context, strict mode, delimiters, limits and the encoding filters.

use std::collections::BTreeMap;

use super::*;

pub(super) fn ctx(pairs: &[(&str, &[u8])]) -> TemplateContext {
    let data: BTreeMap<String, SecretBytes> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), SecretBytes::new(v.to_vec())))
        .collect();
    TemplateContext::from_data(&data)
}

pub(super) fn render_ok(template: &str, ctx: &TemplateContext) -> Vec<u8> {
    match render(template, ctx, None) {
        Ok(bytes) => bytes.into_inner(),
        Err(err) => panic!("render failed: {err}"),
    }
}

pub(super) fn render_str(template: &str, ctx: &TemplateContext) -> String {
    String::from_utf8(render_ok(template, ctx)).expect("utf-8 output")
}

pub(super) fn render_err(template: &str, ctx: &TemplateContext) -> TemplateError {
    match render(template, ctx, None) {
        Ok(_) => panic!("render of {template:?} succeeded"),
        Err(err) => err,
    }
}

fn delims(var: (&str, &str)) -> TemplateDelimiters {
    TemplateDelimiters {
        variable_start: Some(var.0.to_string()),
        variable_end: Some(var.1.to_string()),
        ..Default::default()
    }
}

#[test]
fn every_key_is_a_variable_and_data_maps_all_keys() {
    let c = ctx(&[("user", b"admin"), ("tls.crt", b"CERT")]);
    assert_eq!(
        render_str("{{ user }}:{{ data.user }}:{{ data['tls.crt'] }}", &c),
        "admin:admin:CERT"
    );
}

#[test]
fn a_key_named_data_is_reached_through_the_data_map() {
    let c = ctx(&[("data", b"inner")]);
    assert_eq!(render_str("{{ data.data }}", &c), "inner");
}

#[test]
fn the_rewrite_context_names_the_key_value() {
    let c = TemplateContext::for_rewrite("db/password");
    assert_eq!(
        render_str("{{ value | replace('/', '_') | upper }}", &c),
        "DB_PASSWORD"
    );
}

#[test]
fn with_variable_adds_a_variable() {
    let c = TemplateContext::for_rewrite("k").with_variable("extra", &SecretBytes::from("x"));
    assert_eq!(render_str("{{ value }}{{ extra }}", &c), "kx");
    assert_eq!(
        c.variable_names().collect::<Vec<_>>(),
        vec!["extra", "value"]
    );
}

#[test]
fn an_undefined_variable_is_an_error_naming_it() {
    let err = render_err("a\n{{ pasword }}", &ctx(&[("password", b"s3cret")]));
    assert_eq!(err.reason(), "UndefinedVariable");
    assert_eq!(
        err.to_string(),
        "undefined variable or key at line 2 in `pasword`"
    );
}

#[test]
fn an_undefined_key_of_data_is_an_error() {
    let err = render_err("{{ data.missing }}", &ctx(&[("a", b"1")]));
    assert_eq!(err.reason(), "UndefinedVariable");
    assert!(err.to_string().contains("data.missing"), "{err}");
}

#[test]
fn an_undefined_variable_in_a_condition_is_an_error() {
    let err = render_err("{% if missing %}x{% endif %}", &ctx(&[]));
    assert_eq!(err.reason(), "UndefinedVariable");
}

#[test]
fn defined_tests_and_default_still_work_in_strict_mode() {
    let c = ctx(&[("a", b"1")]);
    assert_eq!(
        render_str(
            "{{ missing | default('d') }}{% if b is defined %}b{% endif %}",
            &c
        ),
        "d"
    );
}

#[test]
fn a_syntax_error_names_the_line() {
    let err = render_err("ok\n{{ a }\n", &ctx(&[("a", b"1")]));
    assert_eq!(err.reason(), "TemplateSyntax");
    assert!(
        err.to_string()
            .starts_with("template syntax error at line 2: "),
        "{err}"
    );
}

#[test]
fn go_template_syntax_is_a_syntax_error() {
    let err = render_err("{{ .password }}", &ctx(&[("password", b"x")]));
    assert_eq!(err.reason(), "TemplateSyntax");
}

#[test]
fn an_unknown_filter_is_named() {
    let err = render_err("{{ a | base64encode }}", &ctx(&[("a", b"1")]));
    assert!(
        matches!(err.reason(), "TemplateRender" | "TemplateSyntax"),
        "{err}"
    );
    assert!(err.to_string().contains("base64encode"), "{err}");
}

#[test]
fn includes_and_imports_cannot_load_anything() {
    for t in [
        "{% include '/etc/passwd' %}",
        "{% import 'x' as y %}",
        "{% extends 'x' %}",
    ] {
        let err = render_err(t, &ctx(&[]));
        assert!(
            matches!(err.reason(), "TemplateRender" | "TemplateSyntax"),
            "{t}: {err}"
        );
    }
}

#[test]
fn runaway_loops_run_out_of_fuel() {
    let err = render_err(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        &ctx(&[]),
    );
    assert_eq!(err.reason(), "TemplateRender");
    assert!(err.to_string().contains("work budget"), "{err}");
}

#[test]
fn output_over_one_mebibyte_is_refused() {
    let err = render_err("{{ 'x' * 1048577 }}", &ctx(&[]));
    assert_eq!(err.reason(), "OutputTooLarge");
    assert_eq!(err.to_string(), "template output exceeds 1048576 bytes");
    // Exactly the limit is fine.
    assert_eq!(
        render_ok("{{ 'x' * 1048576 }}", &ctx(&[])).len(),
        MAX_OUTPUT_BYTES
    );
}

#[test]
fn binary_output_over_the_limit_is_refused() {
    let big = vec![0xffu8; MAX_OUTPUT_BYTES / 2 + 1];
    let c = ctx(&[("bin", &big)]);
    assert_eq!(
        render_err("{{ bin }}{{ bin }}", &c).reason(),
        "OutputTooLarge"
    );
}

#[test]
fn binary_values_pass_through_unchanged() {
    let bin: Vec<u8> = (0..=255u8).collect();
    let c = ctx(&[("bin", &bin)]);
    assert_eq!(render_ok("{{ bin }}", &c), bin);
    assert_eq!(render_ok("{{ data.bin }}", &c), bin);
    let mut framed = b"<".to_vec();
    framed.extend_from_slice(&bin);
    framed.extend_from_slice(b">");
    assert_eq!(render_ok("<{{ bin }}>", &c), framed);
}

#[test]
fn strings_holding_reserved_characters_survive() {
    let text = "a\u{10FF41}b";
    let c = ctx(&[("s", text.as_bytes())]);
    assert_eq!(render_str("{{ s }}", &c), text);
}

#[test]
fn reserved_characters_in_template_source_are_refused() {
    let err = render_err("x\u{10FF41}", &ctx(&[]));
    assert_eq!(err.reason(), "TemplateSyntax");
}

#[test]
fn no_html_escaping_is_applied() {
    let c = ctx(&[("v", b"<a href='x'>&</a>")]);
    assert_eq!(render_str("{{ v }}", &c), "<a href='x'>&</a>");
}

#[test]
fn builtin_filters_exist() {
    let c = ctx(&[("v", b"  Hello  "), ("j", br#"{"a":[1,2]}"#)]);
    assert_eq!(render_str("{{ v | trim | upper }}", &c), "HELLO");
    assert_eq!(render_str("{{ v | trim | lower }}", &c), "hello");
    assert_eq!(render_str("{{ v | replace('l', 'L') }}", &c), "  HeLLo  ");
    assert_eq!(
        render_str("{{ j | fromjson | tojson }}", &c),
        r#"{"a": [1, 2]}"#
    );
}

// ---- delimiters ----

#[test]
fn alternative_delimiters_render_and_leave_braces_alone() {
    let c = ctx(&[("password", b"pw")]);
    let d = delims(("[[", "]]"));
    let out = render("{{ helm }} [[ password ]]", &c, Some(&d)).unwrap();
    assert_eq!(out.expose(), b"{{ helm }} pw");
}

#[test]
fn all_delimiters_can_be_replaced() {
    let c = ctx(&[("a", b"1")]);
    let d = TemplateDelimiters {
        variable_start: Some("<<".into()),
        variable_end: Some(">>".into()),
        block_start: Some("<%".into()),
        block_end: Some("%>".into()),
        comment_start: Some("<#".into()),
        comment_end: Some("#>".into()),
    };
    let out = render(
        "<% if a %><< a >><% endif %><# note #>{{ x }}{% y %}",
        &c,
        Some(&d),
    )
    .unwrap();
    assert_eq!(out.expose(), b"1{{ x }}{% y %}");
}

#[test]
fn environments_are_cached_per_delimiter_set() {
    let a = environment(Some(&delims(("[[", "]]")))).unwrap();
    let b = environment(Some(&delims(("[[", "]]")))).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let d1 = environment(None).unwrap();
    let d2 = environment(Some(&TemplateDelimiters::default())).unwrap();
    assert!(Arc::ptr_eq(&d1, &d2));
    assert!(!Arc::ptr_eq(&a, &d1));
}

#[test]
fn conflicting_delimiters_are_refused() {
    let cases = [
        (
            delims(("{%", "}}")),
            "variableStart `{%` and blockStart `{%` conflict",
        ),
        (
            delims(("{", "}")),
            "variableStart `{` and blockStart `{%` conflict",
        ),
        (delims(("", "]]")), "variableStart is empty"),
        (
            delims(("[ [", "]]")),
            "contains a letter, digit or whitespace",
        ),
        (
            delims(("x", "]]")),
            "contains a letter, digit or whitespace",
        ),
        (delims(("[[[[[[[[[", "]]")), "longer than 8"),
    ];
    for (d, expected) in cases {
        let err = render("x", &ctx(&[]), Some(&d)).unwrap_err();
        assert_eq!(err.reason(), "InvalidDelimiters");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

// ---- encoding filters ----

#[test]
fn b64enc_encodes_strings_and_bytes() {
    let c = ctx(&[("s", b"hello"), ("bin", &[0xff, 0x00, 0xfe])]);
    assert_eq!(render_str("{{ s | b64enc }}", &c), "aGVsbG8=");
    assert_eq!(render_str("{{ bin | b64enc }}", &c), "/wD+");
    assert_eq!(render_str("{{ '' | b64enc }}", &c), "");
}

#[test]
fn b64enc_refuses_other_types() {
    let err = render_err("{{ 42 | b64enc }}", &ctx(&[]));
    assert_eq!(err.reason(), "TemplateFilter");
    assert_eq!(
        err.to_string(),
        "filter `b64enc` failed at line 1: expects a string or bytes, got number"
    );
}

#[test]
fn b64dec_decodes_to_text_or_bytes() {
    let c = ctx(&[("t", b"aGVsbG8=\n"), ("b", b"/wD+")]);
    assert_eq!(render_str("{{ t | b64dec }}", &c), "hello");
    assert_eq!(render_ok("{{ b | b64dec }}", &c), vec![0xff, 0x00, 0xfe]);
    assert_eq!(render_str("{{ b | b64dec | b64enc }}", &c), "/wD+");
}

#[test]
fn b64dec_reports_bad_input_without_it() {
    let c = ctx(&[("bad", b"not*base64")]);
    let err = render_err("{{ bad | b64dec }}", &c);
    assert_eq!(
        err.to_string(),
        "filter `b64dec` failed at line 1: invalid base64: unexpected character at offset 3"
    );
    let err = render_err("{{ 'abc' | b64dec }}", &c);
    assert!(err.to_string().contains("invalid base64"), "{err}");
}

#[test]
fn fromjson_parses_and_reports_position() {
    let c = ctx(&[(
        "j",
        br#"{"user":"u","port":5432,"tags":["a","b"],"ok":true,"n":null}"#,
    )]);
    assert_eq!(
        render_str(
            "{% set v = j | fromjson %}{{ v.user }}:{{ v.port + 1 }}:{{ v.tags | join(',') }}:{{ v.ok }}:{{ v.n }}",
            &c
        ),
        // Jinja prints booleans and none the Python way; `tojson` gives JSON literals.
        "u:5433:a,b:True:None"
    );
    assert_eq!(render_str("{{ (j | fromjson).ok | tojson }}", &c), "true");
    let err = render_err("{{ (x | fromjson).a }}", &ctx(&[("x", b"{\"a\": oops}")]));
    assert_eq!(
        err.to_string(),
        "filter `fromjson` failed at line 1: invalid JSON (Syntax) at line 1 column 7"
    );
}

#[test]
fn fromyaml_parses_and_reports_position() {
    let c = ctx(&[("y", b"user: u\nports:\n  - 1\n  - 2\n")]);
    assert_eq!(
        render_str("{% set v = y | fromyaml %}{{ v.user }}{{ v.ports[1] }}", &c),
        "u2"
    );
    let err = render_err("{{ y | fromyaml }}", &ctx(&[("y", b"a: [1, 2\nb: c\n")]));
    assert_eq!(err.reason(), "TemplateFilter");
    assert!(
        err.to_string()
            .starts_with("filter `fromyaml` failed at line 1: invalid YAML"),
        "{err}"
    );
}

#[test]
fn toyaml_serializes_maps_and_lists() {
    let c = ctx(&[("j", br#"{"b":[1,"two"],"a":{"c":true}}"#)]);
    assert_eq!(
        render_str("{{ j | fromjson | toyaml }}", &c),
        "a:\n  c: true\nb:\n- 1\n- two\n"
    );
    let err = render_err("{{ bin | toyaml }}", &ctx(&[("bin", &[0xff])]));
    assert_eq!(
        err.to_string(),
        "filter `toyaml` failed at line 1: binary values cannot be serialized (encode them with b64enc first)"
    );
}

#[test]
fn sha256_is_lowercase_hex() {
    let c = ctx(&[("s", b"abc"), ("bin", &[0xff])]);
    assert_eq!(
        render_str("{{ s | sha256 }}", &c),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        render_str("{{ bin | sha256 }}", &c),
        "a8100ae6aa1940d0b663bb31cd466142ebbdbd5187131b92d93818987832eb89"
    );
    assert_eq!(
        render_err("{{ [1] | sha256 }}", &c).reason(),
        "TemplateFilter"
    );
}

// ---- no secret in any error ----

/// Values planted in the context; no error message or Debug output may contain any of them.
pub(super) const PLANTED: &[(&str, &str)] = &[
    ("password", "Pl4nted-S3cret-Password"),
    ("json", r#"{"user": Pl4ntedJsonValue}"#),
    ("yaml", "key: [Pl4ntedYamlValue\n"),
    ("b64", "Pl4nted*NotBase64"),
    (
        "pem",
        "-----BEGIN CERTIFICATE-----\nPl4ntedPem!!\n-----END CERTIFICATE-----\n",
    ),
];

pub(super) fn planted_context() -> TemplateContext {
    let pairs: Vec<(&str, &[u8])> = PLANTED.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    ctx(&pairs)
}

pub(super) fn assert_no_planted_value(template: &str, err: &TemplateError) {
    let shown = format!("{err}\n{err:?}\n{err:#?}");
    for (_, value) in PLANTED {
        for needle in [*value, "Pl4nted"] {
            assert!(
                !shown.contains(needle),
                "error of {template:?} shows a secret: {shown}"
            );
        }
    }
}

#[test]
fn errors_never_contain_a_secret_value() {
    let c = planted_context();
    let templates = [
        // undefined variables and keys
        "{{ missing }}",
        "{{ password.nope }}",
        "{{ data.nope }}",
        "{{ password.a.b }}",
        // type errors on secret values
        "{{ password + 1 }}",
        "{{ password - 1 }}",
        "{{ password | int + [] }}",
        "{{ password[1000] }}",
        "{{ password() }}",
        "{{ password | round }}",
        "{{ password | batch('x') }}",
        "{{ range(password) }}",
        "{{ password | join(1, 2, 3) }}",
        "{{ password | int }}",
        "{{ data[password] }}",
        "{{ {}[password] }}",
        "{% for x in password %}{{ x.y }}{% endfor %}",
        "{{ password | attr(password) }}",
        "{{ password.startswith(1) }}",
        "{{ password | unknownfilter }}",
        // kuvert filters on bad secret input
        "{{ b64 | b64dec }}",
        "{{ json | fromjson }}",
        "{{ yaml | fromyaml }}",
        "{{ pem | filter_pem('CERTIFICATE') }}",
        "{{ [password] | sha256 }}",
        // limits
        "{{ password * 100000 }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ password }}{% endfor %}{% endfor %}",
        // syntax
        "{{ password ",
    ];
    for template in templates {
        let err = render_err(template, &c);
        println!("{template} -> {}: {err}", err.reason());
        assert_no_planted_value(template, &err);
    }
}

#[test]
fn the_context_debug_shows_names_only() {
    let shown = format!("{:?}", planted_context());
    assert!(shown.contains("password"), "{shown}");
    assert!(!shown.contains("Pl4nted"), "{shown}");
}

// ---- the examples of docs/templates.md ----

#[test]
fn the_documented_examples_render_as_documented() {
    let c = ctx(&[("user", b"admin"), ("password", b"pw")]);
    assert_eq!(
        render_str(r#"{{ {"user": user, "ports": [1, 2]} | toyaml }}"#, &c),
        "ports:\n- 1\n- 2\nuser: admin\n"
    );
    let d = TemplateDelimiters {
        variable_start: Some("[[".into()),
        variable_end: Some("]]".into()),
        block_start: Some("[%".into()),
        block_end: Some("%]".into()),
        comment_start: Some("[#".into()),
        comment_end: Some("#]".into()),
    };
    let out = render(
        "password: [[ password ]]\n[% if tls_enabled is defined %]tls: true[% endif %]{{ helm }}",
        &c,
        Some(&d),
    )
    .unwrap();
    assert_eq!(out.expose(), b"password: pw\n{{ helm }}");
    assert_eq!(
        render_str(
            "{{ value | replace('/', '_') | upper }}",
            &TemplateContext::for_rewrite("db/password")
        ),
        "DB_PASSWORD"
    );
}

// ---- robustness ----

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    fn template_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            "[[",
            "]]",
            " ",
            "\n",
            "|",
            "(",
            ")",
            "'",
            "\"",
            "password",
            "data",
            "bin",
            "value",
            "b64enc",
            "b64dec",
            "fromjson",
            "toyaml",
            "filter_pem",
            "pkcs12_key",
            "cert_sans",
            "rsa_decrypt",
            "if",
            "for",
            "in",
            "endif",
            "endfor",
            "set",
            "=",
            "~",
            "+",
            "*",
            "[",
            "]",
            ".",
            "1",
            "é",
            "\u{10FF41}",
        ]);
        prop::collection::vec(pieces, 0..24).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any template text renders or fails with an error; nothing panics, and an error never
        /// shows the planted values.
        #[test]
        fn any_template_renders_or_fails_cleanly(template in template_text(), helm in any::<bool>()) {
            let c = planted_context().with_variable("bin", &SecretBytes::new(vec![0xff, 0x00]));
            let d = TemplateDelimiters {
                variable_start: Some("[[".into()),
                variable_end: Some("]]".into()),
                ..Default::default()
            };
            if let Err(err) = render(&template, &c, helm.then_some(&d)) {
                assert_no_planted_value(&template, &err);
            }
        }
    }
}

#[test]
fn a_final_newline_is_kept_as_esos_go_templates_keep_it() {
    let c = ctx(&[("user", b"app")]);
    assert_eq!(render_str("user = {{ user }}\n", &c), "user = app\n");
    let brackets = crate::api::TemplateDelimiters {
        variable_start: Some("[[".into()),
        variable_end: Some("]]".into()),
        ..Default::default()
    };
    let out = render("user = [[ user ]]\n", &c, Some(&brackets)).unwrap();
    assert_eq!(out.expose(), b"user = app\n");
}
