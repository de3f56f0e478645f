use std::collections::BTreeSet;
use std::sync::Arc;

use futures::executor::block_on;
use kuvert_core::api::{PasswordSpec, UuidSpec};
use kuvert_core::generator::{GeneratorContext, GeneratorKind, Kind};
use kuvert_core::memory::MemoryKube;
use proptest::prelude::*;

use super::*;
use crate::password::{DEFAULT_SYMBOLS, PasswordPlan};

fn count(s: &str, f: impl Fn(char) -> bool) -> u32 {
    s.chars().filter(|c| f(*c)).count() as u32
}

fn spec(length: Option<u32>, digits: Option<u32>, symbols: Option<u32>) -> PasswordSpec {
    PasswordSpec {
        length,
        digits,
        symbols,
        ..PasswordSpec::default()
    }
}

fn refusal(spec: PasswordSpec) -> String {
    PasswordPlan::new(&spec).unwrap_err().to_string()
}

#[test]
fn a_default_password_has_24_characters_6_digits_6_symbols_and_no_repeats() {
    let plan = PasswordPlan::new(&PasswordSpec::default()).unwrap();
    let random = SeededRandom::new(1);
    for _ in 0..200 {
        let pw = plan.generate(&random);
        assert_eq!(pw.chars().count(), 24);
        assert_eq!(count(&pw, |c| c.is_ascii_digit()), 6);
        assert_eq!(count(&pw, |c| DEFAULT_SYMBOLS.contains(c)), 6);
        assert_eq!(count(&pw, |c| c.is_ascii_alphabetic()), 12);
        assert_eq!(pw.chars().collect::<BTreeSet<_>>().len(), 24, "no repeats");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn passwords_have_exactly_the_counts_and_characters_asked_for(
        length in 1u32..=80,
        digit_share in 0u32..=100,
        symbol_share in 0u32..=100,
        no_upper: bool,
        symbol_set in "[!-/:-@]{1,12}",
        seed: u64,
    ) {
        let digits = (length * digit_share / 100).min(10);
        let symbols = ((length - digits) * symbol_share / 100).min(symbol_set.chars().collect::<BTreeSet<_>>().len() as u32);
        let letters = length - digits - symbols;
        let alphabet = if no_upper { 26 } else { 52 };
        prop_assume!(letters <= alphabet);
        let spec = PasswordSpec {
            length: Some(length),
            digits: Some(digits),
            symbols: Some(symbols),
            symbol_characters: Some(symbol_set.clone()),
            no_upper: Some(no_upper),
            allow_repeat: Some(false),
        };
        let plan = PasswordPlan::new(&spec).unwrap();
        let random = SeededRandom::new(seed);
        for _ in 0..5 {
            let pw = plan.generate(&random);
            prop_assert_eq!(pw.chars().count() as u32, length);
            prop_assert_eq!(count(&pw, |c| c.is_ascii_digit()), digits);
            prop_assert_eq!(count(&pw, |c| symbol_set.contains(c)), symbols);
            prop_assert_eq!(count(&pw, |c| c.is_ascii_alphabetic()), letters);
            if no_upper {
                prop_assert_eq!(count(&pw, |c| c.is_ascii_uppercase()), 0);
            }
            prop_assert_eq!(pw.chars().collect::<BTreeSet<_>>().len() as u32, length, "a character repeats");
        }
    }

    #[test]
    fn with_allow_repeat_any_counts_that_fit_the_length_are_generated(
        length in 1u32..=300,
        digit_share in 0u32..=100,
        symbol_share in 0u32..=100,
        seed: u64,
    ) {
        let digits = length * digit_share / 100;
        let symbols = (length - digits) * symbol_share / 100;
        let spec = PasswordSpec {
            length: Some(length),
            digits: Some(digits),
            symbols: Some(symbols),
            symbol_characters: Some("#".to_owned()),
            no_upper: Some(true),
            allow_repeat: Some(true),
        };
        let pw = PasswordPlan::new(&spec).unwrap().generate(&SeededRandom::new(seed));
        prop_assert_eq!(pw.chars().count() as u32, length);
        prop_assert_eq!(count(&pw, |c| c.is_ascii_digit()), digits);
        prop_assert_eq!(count(&pw, |c| c == '#'), symbols);
        prop_assert_eq!(count(&pw, |c| c.is_ascii_lowercase()), length - digits - symbols);
    }

    #[test]
    fn uuids_are_version_4_in_canonical_form(seed: u64) {
        let random = SeededRandom::new(seed);
        let id = uuid::v4(&random);
        prop_assert_eq!(id.len(), 36);
        let groups: Vec<&str> = id.split('-').collect();
        prop_assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12]);
        prop_assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        prop_assert_eq!(&groups[2][..1], "4");
        prop_assert!("89ab".contains(&groups[3][..1]));
    }

    #[test]
    fn uniform_draws_stay_in_range(n in 1u32..=u32::MAX, seed: u64) {
        let random = SeededRandom::new(seed);
        for _ in 0..20 {
            prop_assert!(uniform(&random, n) < n);
        }
    }
}

#[test]
fn every_character_of_an_alphabet_is_drawn_about_equally_often() {
    // 52 letters, one per password, 52,000 draws: each letter expected 1,000 times. A biased
    // draw (e.g. `% n` on a byte) would skew the first letters far beyond these bounds.
    let plan = PasswordPlan::new(&spec(Some(1), Some(0), Some(0))).unwrap();
    let random = SeededRandom::new(7);
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..52_000 {
        *counts.entry(plan.generate(&random)).or_insert(0u32) += 1;
    }
    assert_eq!(counts.len(), 52);
    for (letter, n) in counts {
        assert!((850..=1150).contains(&n), "{letter} drawn {n} times");
    }
}

#[test]
fn the_digit_and_symbol_defaults_are_a_quarter_of_the_length() {
    let plan = PasswordPlan::new(&spec(Some(9), None, None)).unwrap();
    assert_eq!((plan.length, plan.digits, plan.symbols), (9, 2, 2));
    let plan = PasswordPlan::new(&spec(Some(3), None, None)).unwrap();
    assert_eq!((plan.digits, plan.symbols, plan.letter_count()), (0, 0, 3));
}

#[test]
fn impossible_password_specs_are_refused_naming_the_field() {
    assert_eq!(
        refusal(spec(Some(10), Some(6), Some(5))),
        "invalid spec: spec.length: 6 digits and 5 symbols do not fit in a length of 10"
    );
    assert_eq!(
        refusal(spec(Some(0), None, None)),
        "invalid spec: spec.length: 0 is outside 1 to 4096"
    );
    assert_eq!(
        refusal(spec(Some(5000), None, None)),
        "invalid spec: spec.length: 5000 is outside 1 to 4096"
    );
    assert_eq!(
        refusal(spec(Some(20), Some(11), Some(0))),
        "invalid spec: spec.digits: 11 digits are asked for but there are only 10 digits and allowRepeat is false"
    );
    assert_eq!(
        refusal(PasswordSpec {
            symbols: Some(3),
            symbol_characters: Some("!!@".to_owned()),
            ..spec(Some(20), Some(0), None)
        }),
        "invalid spec: spec.symbols: 3 symbols are asked for but there are only 2 distinct symbol characters and allowRepeat is false"
    );
    assert_eq!(
        refusal(PasswordSpec {
            symbol_characters: Some(String::new()),
            ..spec(Some(8), Some(0), Some(1))
        }),
        "invalid spec: spec.symbolCharacters: is empty, and 1 symbols are asked for"
    );
    assert_eq!(
        refusal(PasswordSpec {
            no_upper: Some(true),
            ..spec(Some(30), Some(2), Some(1))
        }),
        "invalid spec: spec.length: 27 letters are needed (30 - 2 digits - 1 symbols) but there are only 26 letters and allowRepeat is false"
    );
    assert_eq!(
        refusal(spec(Some(100), None, None)),
        "invalid spec: spec.digits: 25 digits are asked for but there are only 10 digits and allowRepeat is false"
    );
    // The same lengths are fine once repeats are allowed.
    let plan = PasswordPlan::new(&PasswordSpec {
        allow_repeat: Some(true),
        ..spec(Some(100), None, None)
    })
    .unwrap();
    assert_eq!(plan.generate(&OsRandom::default()).chars().count(), 100);
}

#[test]
fn the_password_kind_validates_and_builds_generators_that_make_fresh_values() {
    let kind = PasswordKind::new(Arc::new(OsRandom::default()));
    let good = spec(Some(32), Some(4), Some(4));
    let ctx = GeneratorContext {
        kind: Kind::Password,
        name: "pw",
        namespace: "apps",
    };
    kind.validate(&ctx, &good).unwrap();
    let generator = block_on(kind.generator(&ctx, &good, &MemoryKube::default())).unwrap();
    let a = block_on(generator.generate()).unwrap();
    let b = block_on(generator.generate()).unwrap();
    assert_eq!(a.values.keys().collect::<Vec<_>>(), ["password"]);
    assert_eq!(a.values["password"].len(), 32);
    assert_eq!(a.lease, None);
    assert_ne!(a.values["password"], b.values["password"]);

    let bad = spec(Some(4), Some(4), Some(4));
    assert_eq!(
        kind.validate(&ctx, &bad).unwrap_err().to_string(),
        "invalid spec: spec.length: 4 digits and 4 symbols do not fit in a length of 4"
    );
    assert!(block_on(kind.generator(&ctx, &bad, &MemoryKube::default())).is_err());
}

#[test]
fn the_uuid_kind_makes_a_new_uuid_each_run() {
    let kind = UuidKind::new(Arc::new(SeededRandom::new(3)));
    let ctx = GeneratorContext {
        kind: Kind::Uuid,
        name: "id",
        namespace: "apps",
    };
    let generator = block_on(kind.generator(&ctx, &UuidSpec {}, &MemoryKube::default())).unwrap();
    let ids: BTreeSet<_> = (0..1000)
        .map(|_| {
            block_on(generator.generate()).unwrap().values["uuid"]
                .clone()
                .into_inner()
        })
        .collect();
    assert_eq!(ids.len(), 1000);
}

#[test]
fn seeded_sources_repeat_and_differ_by_seed() {
    let (mut a, mut b, mut c) = ([0u8; 70], [0u8; 70], [0u8; 70]);
    SeededRandom::new(5).fill(&mut a);
    SeededRandom::new(5).fill(&mut b);
    SeededRandom::new(6).fill(&mut c);
    assert_eq!(a, b);
    assert_ne!(a, c);
}
