//! `Password`: `length` characters of which exactly `digits` are digits and exactly `symbols`
//! are symbols, the rest letters, in a uniformly random order.
//!
//! Defaults as ESO's: `length` 24, `digits` and `symbols` each a quarter of the length,
//! symbols from ``~!@#$%^&*()_+-={}|[]\:"<>?,./``, upper- and lower-case letters, no
//! character twice. Without `allowRepeat` every class is drawn without replacement, so a spec
//! asking for more characters of a class than it has (11 digits, 53 letters) is refused.

use kuvert_core::api::PasswordSpec;
use kuvert_core::generator::GenerateError;
use kuvert_core::generator::RandomSource;

use crate::uniform;

/// Length of a password when `length` is not set.
pub const DEFAULT_LENGTH: u32 = 24;
/// Longest password (as the CRD schema allows).
pub const MAX_LENGTH: u32 = 4096;
/// Symbols drawn from when `symbolCharacters` is not set.
pub const DEFAULT_SYMBOLS: &str = "~!@#$%^&*()_+-={}|[]\\:\"<>?,./";

const DIGITS: &str = "0123456789";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A checked `Password` spec: how many characters of each class, drawn from which alphabet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPlan {
    /// Total length, in characters.
    pub length: u32,
    /// Exactly this many digits.
    pub digits: u32,
    /// Exactly this many symbols.
    pub symbols: u32,
    /// The distinct symbols drawn from.
    pub symbol_characters: Vec<char>,
    /// The letters drawn from.
    pub letters: Vec<char>,
    /// Whether a character may appear more than once.
    pub allow_repeat: bool,
}

fn invalid(field: &str, message: String) -> GenerateError {
    GenerateError::invalid_spec(format!("spec.{field}"), message)
}

impl PasswordPlan {
    /// Applies the defaults and refuses specs no password can satisfy.
    pub fn new(spec: &PasswordSpec) -> Result<Self, GenerateError> {
        let length = spec.length.unwrap_or(DEFAULT_LENGTH);
        if !(1..=MAX_LENGTH).contains(&length) {
            return Err(invalid(
                "length",
                format!("{length} is outside 1 to {MAX_LENGTH}"),
            ));
        }
        let digits = spec.digits.unwrap_or(length / 4);
        let symbols = spec.symbols.unwrap_or(length / 4);
        if u64::from(digits) + u64::from(symbols) > u64::from(length) {
            return Err(invalid(
                "length",
                format!("{digits} digits and {symbols} symbols do not fit in a length of {length}"),
            ));
        }
        let mut symbol_characters: Vec<char> = Vec::new();
        for c in spec
            .symbol_characters
            .as_deref()
            .unwrap_or(DEFAULT_SYMBOLS)
            .chars()
        {
            if !symbol_characters.contains(&c) {
                symbol_characters.push(c);
            }
        }
        if symbols > 0 && symbol_characters.is_empty() {
            return Err(invalid(
                "symbolCharacters",
                format!("is empty, and {symbols} symbols are asked for"),
            ));
        }
        let mut letters: Vec<char> = LOWER.chars().collect();
        if !spec.no_upper.unwrap_or(false) {
            letters.extend(UPPER.chars());
        }
        let allow_repeat = spec.allow_repeat.unwrap_or(false);
        let plan = PasswordPlan {
            length,
            digits,
            symbols,
            symbol_characters,
            letters,
            allow_repeat,
        };
        if !allow_repeat {
            let classes = [
                ("digits", digits, DIGITS.len(), "digits"),
                (
                    "symbols",
                    symbols,
                    plan.symbol_characters.len(),
                    "distinct symbol characters",
                ),
                ("length", plan.letter_count(), plan.letters.len(), "letters"),
            ];
            for (field, wanted, available, what) in classes {
                if wanted as usize > available {
                    let message = if field == "length" {
                        format!(
                            "{wanted} letters are needed ({length} - {digits} digits - {symbols} symbols) but there are only {available} {what} and allowRepeat is false"
                        )
                    } else {
                        format!(
                            "{wanted} {field} are asked for but there are only {available} {what} and allowRepeat is false"
                        )
                    };
                    return Err(invalid(field, message));
                }
            }
        }
        Ok(plan)
    }

    /// How many letters the password has.
    pub fn letter_count(&self) -> u32 {
        self.length - self.digits - self.symbols
    }

    /// A fresh password.
    pub fn generate(&self, random: &dyn RandomSource) -> String {
        let digits: Vec<char> = DIGITS.chars().collect();
        let mut chars = Vec::with_capacity(self.length as usize);
        self.draw(random, &digits, self.digits, &mut chars);
        self.draw(random, &self.symbol_characters, self.symbols, &mut chars);
        self.draw(random, &self.letters, self.letter_count(), &mut chars);
        shuffle(random, &mut chars);
        chars.into_iter().collect()
    }

    /// Appends `count` characters of `alphabet`, without replacement unless repeats are allowed.
    fn draw(&self, random: &dyn RandomSource, alphabet: &[char], count: u32, out: &mut Vec<char>) {
        if self.allow_repeat {
            for _ in 0..count {
                out.push(alphabet[uniform(random, alphabet.len() as u32) as usize]);
            }
        } else {
            // A partial Fisher-Yates shuffle: the first `count` of a shuffled copy.
            let mut pool = alphabet.to_vec();
            for i in 0..count as usize {
                let j = i + uniform(random, (pool.len() - i) as u32) as usize;
                pool.swap(i, j);
                out.push(pool[i]);
            }
        }
    }
}

/// A uniformly random permutation (Fisher-Yates).
fn shuffle(random: &dyn RandomSource, chars: &mut [char]) {
    for i in (1..chars.len()).rev() {
        let j = uniform(random, i as u32 + 1) as usize;
        chars.swap(i, j);
    }
}
