//! `events.k8s.io/v1` Events are a view over the core/v1 Events storage (as on a real server),
//! so what kube-rs's event recorder writes shows in `kubectl describe` and `kubectl get events`.
//! The field pairs are those of the upstream conversion.

use serde_json::Value;

/// (core/v1 field, events.k8s.io/v1 field).
const PAIRS: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(mut obj: Value, to_events: bool) -> Value {
    if let Some(m) = obj.as_object_mut() {
        for (core, events) in PAIRS {
            let (from, to) = if to_events {
                (core, events)
            } else {
                (events, core)
            };
            if let Some(v) = m.remove(from) {
                m.insert(to.to_string(), v);
            }
        }
    }
    obj
}

/// A stored core/v1 Event in the events.k8s.io/v1 shape.
pub(crate) fn core_to_events(obj: Value) -> Value {
    rename(obj, true)
}

/// An events.k8s.io/v1 Event in the core/v1 shape it is stored in.
pub(crate) fn events_to_core(obj: Value) -> Value {
    rename(obj, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_two_event_shapes_convert_both_ways() {
        let events = json!({"regarding": {"kind": "Secret", "name": "s"}, "note": "synced", "reason": "Synced", "reportingController": "kuvert", "deprecatedCount": 2});
        let core = events_to_core(events.clone());
        assert_eq!(
            core,
            json!({"involvedObject": {"kind": "Secret", "name": "s"}, "message": "synced", "reason": "Synced", "reportingComponent": "kuvert", "count": 2})
        );
        assert_eq!(core_to_events(core), events);
    }
}
