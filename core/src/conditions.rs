//! The `Ready` condition every kuvert kind reports, in the standard `metav1.Condition` shape.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition type kuvert sets.
pub const READY: &str = "Ready";

/// Longest condition message kept (the API limits it to 32 KiB; events to 1 KiB).
const MAX_MESSAGE: usize = 1024;

/// Builds the `Ready` condition. `lastTransitionTime` moves only when the status flips, so a
/// refresh that changes nothing writes nothing new.
pub fn ready(
    previous: &[Condition],
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == READY && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    let mut message = message.to_owned();
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    Condition {
        type_: READY.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The `Ready` condition of a list, if any.
pub fn find_ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == READY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn transition_time_stays_while_the_status_holds() {
        let first = ready(&[], true, "SecretSynced", "ok", Some(1), at(100));
        assert_eq!(first.last_transition_time, Time(at(100)));
        let again = ready(
            std::slice::from_ref(&first),
            true,
            "SecretSynced",
            "ok again",
            Some(2),
            at(200),
        );
        assert_eq!(again.last_transition_time, Time(at(100)));
        assert_eq!(again.message, "ok again");
        assert_eq!(again.observed_generation, Some(2));
        let failed = ready(
            &[again],
            false,
            "SecretSyncedError",
            "boom",
            Some(2),
            at(300),
        );
        assert_eq!(failed.last_transition_time, Time(at(300)));
        assert_eq!(failed.status, "False");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE);
        let c = ready(&[], false, "X", &long, None, at(0));
        assert!(c.message.len() <= MAX_MESSAGE);
        assert!(c.message.chars().all(|ch| ch == 'é'));
    }
}
