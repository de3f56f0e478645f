//! `target.template` and `rewrite.transform` templates: the template text is what the fuzzer
//! writes (namespace users write templates), over a small fixed context of the shapes real
//! Secrets hold (text, JSON, YAML, PEM, binary). No render may panic, hang or exceed the
//! output limit, and no error may quote a secret value.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use kuvert_core::api::TemplateDelimiters;
use kuvert_core::secret::SecretBytes;
use kuvert_core::template::{self, MAX_OUTPUT_BYTES, TemplateContext};
use libfuzzer_sys::fuzz_target;

/// A value no template writes by accident: an error containing it quotes the variable.
const SECRET: &str = "Zq-\u{2603}-pw";

fn context() -> &'static TemplateContext {
    static CTX: OnceLock<TemplateContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let testdata = |name: &str| {
            let path = format!(
                "{}/../core/src/template/testdata/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: Vec<u8>| {
            data.insert(k.to_owned(), SecretBytes::new(v));
        };
        put("password", SECRET.as_bytes().to_vec());
        put("user", b"app".to_vec());
        put("n", b"42".to_vec());
        put(
            "config",
            br#"{"db":{"host":"pg","port":5432},"tags":["a","b"],"on":true}"#.to_vec(),
        );
        put("yaml", b"a: 1\nb:\n  - x\n  - y\n".to_vec());
        put("b64", b"aGVsbG8=".to_vec());
        put("bin", vec![0, 159, 146, 150, 255]);
        put("tls.crt", testdata("chain.crt"));
        put("tls.key", testdata("leaf.key"));
        put("jwk", testdata("leaf.jwk.json"));
        put("p12", testdata("nopass.p12"));
        TemplateContext::from_data(&data)
            .with_now(jiff::Timestamp::from_second(1_700_000_000).expect("a valid instant"))
    })
}

fn delimiters(selector: u8) -> Option<TemplateDelimiters> {
    let set = |v: (&str, &str), b: (&str, &str), c: (&str, &str)| TemplateDelimiters {
        variable_start: Some(v.0.to_owned()),
        variable_end: Some(v.1.to_owned()),
        block_start: Some(b.0.to_owned()),
        block_end: Some(b.1.to_owned()),
        comment_start: Some(c.0.to_owned()),
        comment_end: Some(c.1.to_owned()),
    };
    match selector % 4 {
        2 => Some(set(("[[", "]]"), ("[%", "%]"), ("[#", "#]"))),
        3 => Some(set(("<<", ">>"), ("<%", "%>"), ("<#", "#>"))),
        _ => None,
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, text)) = input.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let delimiters = delimiters(selector);
    let _ = template::check(&text, delimiters.as_ref());
    match template::render(&text, context(), delimiters.as_ref()) {
        Ok(out) => assert!(out.len() <= MAX_OUTPUT_BYTES, "output over the limit"),
        Err(err) => {
            // A template that writes the value itself (or escapes that build it) may see it
            // in its own source text, which errors quote; any other error must not.
            if !text.contains('\u{2603}') && !text.contains('\\') {
                let message = err.to_string();
                assert!(
                    !message.contains(SECRET),
                    "an error quotes a secret: {message}"
                );
            }
        }
    }
});
