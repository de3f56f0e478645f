//! Resource limits a template cannot escape: namespace users write templates, so no template
//! may hang the operator or make it allocate far past the output limit. Each test is a case
//! the fuzzer (`fuzz/`, target `template`) found or that its findings pointed to.

use super::tests::{ctx, render_err, render_str};

/// The message of a render that a function refused because its result would be too large.
const TOO_LARGE: &str = "the result would exceed the output limit";

fn refused_as_too_large(template: &str) {
    let err = render_err(template, &ctx(&[]));
    assert_eq!(err.reason(), "TemplateFilter", "{template}: {err}");
    assert!(err.to_string().contains(TOO_LARGE), "{template}: {err}");
}

#[test]
fn indent_is_refused_before_it_builds_a_result_past_the_output_limit() {
    // 100,001 lines of 65,536 spaces each: 6.5 GB before the fix.
    refused_as_too_large(r#"{{ indent(65536, repeat(100000, "\n")) }}"#);
    refused_as_too_large(r#"{{ nindent(65536, repeat(100000, "\n")) }}"#);
    assert_eq!(
        render_str(r#"{{ nindent(2, "a\nb") }}"#, &ctx(&[])),
        "\n  a\n  b"
    );
}

#[test]
fn replace_of_the_empty_string_is_refused_before_it_multiplies_past_the_output_limit() {
    // Go's strings.Replace with an empty `old` inserts `new` around every character.
    refused_as_too_large(r#"{{ replace("", repeat(100000, "y"), repeat(1000, "x")) }}"#);
    refused_as_too_large(r#"{{ replace("x", repeat(100000, "y"), repeat(1000, "x")) }}"#);
    assert_eq!(
        render_str(r#"{{ replace("", "-", "ab") }}"#, &ctx(&[])),
        "-a-b-"
    );
}

#[test]
fn regex_replace_all_is_refused_before_its_expansions_pass_the_output_limit() {
    refused_as_too_large(r#"{{ regexReplaceAll(".", repeat(100000, "x"), repeat(50, "${0}")) }}"#);
    refused_as_too_large(
        r#"{{ regexReplaceAllLiteral("", repeat(1000, "x"), repeat(100000, "y")) }}"#,
    );
    // sprig's documented example.
    assert_eq!(
        render_str(
            r#"{{ regexReplaceAll("a(x*)b", "-ab-axxb-", "${1}W") }}"#,
            &ctx(&[])
        ),
        "-W-xxW-"
    );
}

#[test]
fn printf_with_many_wide_verbs_is_refused_past_the_output_limit() {
    refused_as_too_large(r#"{{ printf("%1000000d%1000000d", 1, 2) }}"#);
    refused_as_too_large(r#"{{ printf("%.1000000f%.1000000f", 1.5, 2.5) }}"#);
    refused_as_too_large(r#"{{ printf("%1000d", range(2000) | list) }}"#);
    assert_eq!(
        render_str(r#"{{ printf("%5d|%-3s|", 42, "a") }}"#, &ctx(&[])),
        "   42|a  |"
    );
}

#[test]
fn a_float_precision_past_the_formatters_limit_is_written_not_a_panic() {
    // Rust's formatter panics on a precision over 65,535 ("Formatting argument out of
    // range"): the operator thread rendering the template died.
    let out = render_str(r#"{{ printf("%.70000f", 1.5) }}"#, &ctx(&[]));
    assert_eq!(out.len(), 2 + 70000);
    assert!(out.starts_with("1.5000"), "{}", &out[..10]);
    assert!(out[2..].bytes().skip(1).all(|b| b == b'0'));
    let out = render_str(r#"{{ printf("%.70000e", 0.1) }}"#, &ctx(&[]));
    assert!(
        out.starts_with("1.000000000000000055511151231257827"),
        "{}",
        &out[..40]
    );
    assert!(out.ends_with("0000e-01"), "{}", &out[out.len() - 10..]);
    assert_eq!(out.len(), "1.".len() + 70000 + "e-01".len());
}

#[test]
fn functions_are_charged_for_the_input_they_walk() {
    // Each call walks (copies) a 1 MiB value: 100,000 calls ran for minutes on the fuel of a
    // few instructions each; charged for their input, they stop after about a hundred.
    let big = vec![b'x'; 1 << 20];
    let c = ctx(&[("big", &big)]);
    let err = render_err(
        r#"{% for i in range(100000) %}{{ hasPrefix("y", big) }}{% endfor %}"#,
        &c,
    );
    assert!(err.to_string().contains("work budget"), "{err}");
    let err = render_err(
        r#"{% for i in range(100000) %}{{ big | trimSuffix("y") | length }}{% endfor %}"#,
        &c,
    );
    assert!(err.to_string().contains("work budget"), "{err}");
    // A few calls on the same value are well within the budget.
    assert_eq!(render_str(r#"{{ hasPrefix("x", big) }}"#, &c), "True");
}

/// The fuel `expression` draws when rendered once, measured by the render itself.
fn fuel_of(expression: &str) -> u64 {
    let mut env = super::build_environment(minijinja::syntax::SyntaxConfig::default());
    env.add_function("fuel_used", |state: &minijinja::State| {
        state.fuel_levels().map_or(0, |(consumed, _)| consumed)
    });
    let c = ctx(&[
        ("cert", include_bytes!("testdata/leaf.crt")),
        ("key", include_bytes!("testdata/leaf.key")),
        ("jwk", include_bytes!("testdata/leaf.jwk.json")),
    ]);
    let template = format!(
        "{{% set before = fuel_used() %}}{{% set x = {expression} %}}{{{{ fuel_used() - before }}}}"
    );
    let out = env
        .render_str(&template, c.root())
        .unwrap_or_else(|err| panic!("{expression}: {err}"));
    out.parse().expect("a number")
}

#[test]
fn costly_filters_draw_on_the_work_budget_for_their_work() {
    // bcrypt, PBKDF2 and private-key operations take milliseconds each: without a charge a
    // loop over them ran for minutes within the budget.
    for (expression, at_least) in [
        (r#"bcrypt("pw")"#, 100_000),
        (r#"htpasswd("user", "pw")"#, 100_000),
        ("cert | pem_to_pkcs12(key)", 50_000),
        ("pemToPkcs12(cert, key)", 50_000),
        ("jwk | jwk_public_key_pem", 20_000),
        ("jwkPublicKeyPem(jwk)", 20_000),
    ] {
        let used = fuel_of(expression);
        assert!(used >= at_least, "{expression} drew {used} fuel");
    }
    assert!(fuel_of(r#"upper("pw")"#) < 100);
}
