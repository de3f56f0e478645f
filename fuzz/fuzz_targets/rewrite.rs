//! `dataFrom[].rewrite[]`: regexp (user-written patterns), transform templates and merges of
//! JSON values, in any order and combination, over arbitrary keys and values.
//!
//! An input that is JSON `{"rewrite": [...], "data": {...}}` is read as the spec and the keys
//! (the seeds, taken from the tests, are written so); any other input is read with `arbitrary`,
//! which reaches every combination of operations.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use kuvert_core::api::{
    ExternalSecretRewrite, MergeConflictPolicy, MergePriorityPolicy, MergeStrategy, RewriteMerge,
    RewriteRegexp, RewriteTransform,
};
use kuvert_core::engine::rewrite;
use kuvert_core::secret::SecretBytes;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Regexp {
        source: String,
        target: String,
    },
    Transform {
        template: String,
    },
    Merge {
        into: Option<String>,
        priority: Vec<String>,
        ignore_not_found: bool,
        conflict_ignore: bool,
        json: bool,
    },
    /// More than one of the three set: an invalid spec.
    Both {
        source: String,
        template: String,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    entries: Vec<(String, String)>,
}

fn spec(op: Op) -> ExternalSecretRewrite {
    match op {
        Op::Regexp { source, target } => ExternalSecretRewrite {
            regexp: Some(RewriteRegexp { source, target }),
            ..Default::default()
        },
        Op::Transform { template } => ExternalSecretRewrite {
            transform: Some(RewriteTransform { template }),
            ..Default::default()
        },
        Op::Merge {
            into,
            priority,
            ignore_not_found,
            conflict_ignore,
            json,
        } => ExternalSecretRewrite {
            merge: Some(RewriteMerge {
                into,
                priority,
                priority_policy: ignore_not_found.then_some(MergePriorityPolicy::IgnoreNotFound),
                conflict_policy: conflict_ignore.then_some(MergeConflictPolicy::Ignore),
                strategy: Some(if json {
                    MergeStrategy::Json
                } else {
                    MergeStrategy::Extract
                }),
            }),
            ..Default::default()
        },
        Op::Both { source, template } => ExternalSecretRewrite {
            regexp: Some(RewriteRegexp {
                source,
                target: String::new(),
            }),
            transform: Some(RewriteTransform { template }),
            ..Default::default()
        },
    }
}

#[derive(serde::Deserialize)]
struct Seed {
    rewrite: Vec<ExternalSecretRewrite>,
    data: BTreeMap<String, String>,
}

fn read(bytes: &[u8]) -> Option<(Vec<ExternalSecretRewrite>, BTreeMap<String, String>)> {
    if let Ok(seed) = serde_json::from_slice::<Seed>(bytes) {
        return Some((seed.rewrite, seed.data));
    }
    let input = Input::arbitrary_take_rest(Unstructured::new(bytes)).ok()?;
    Some((
        input.ops.into_iter().map(spec).collect(),
        input.entries.into_iter().collect(),
    ))
}

fuzz_target!(|bytes: &[u8]| {
    let Some((rewrites, data)) = read(bytes) else {
        return;
    };
    if rewrites.len() > 8 {
        return;
    }
    let map: BTreeMap<String, SecretBytes> = data
        .into_iter()
        .map(|(k, v)| (k, SecretBytes::new(v)))
        .collect();
    let _ = rewrite::apply(&rewrites, "spec.dataFrom[0].rewrite", map);
});
