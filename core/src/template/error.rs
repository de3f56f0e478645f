//! Template errors, and how minijinja's errors become them without leaking a value.
//!
//! minijinja's `Display` and `Debug` of an error may quote values (a builtin filter's detail, the
//! debug dump of the template's variables). So a minijinja error is never stored or formatted:
//! [`from_minijinja`] keeps its kind, line and source span, takes the *template source* text of
//! that span (templates are not secrets, values are), and keeps minijinja's detail text only for
//! kinds whose detail is built from the template source alone (syntax, unknown filter, ...).
//! Our own filters fail with a [`FilterFailure`], whose reason is written never to contain a value.

use std::borrow::Cow;
use std::fmt;

use minijinja::ErrorKind;

/// Why a template could not be rendered. Messages name the line, the expression and the filter,
/// never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The delimiters are empty, ambiguous or conflicting.
    #[error("invalid template delimiters: {reason}")]
    InvalidDelimiters {
        /// What is wrong with them.
        reason: String,
    },
    /// The template does not parse.
    #[error("template syntax error at line {line}: {detail}")]
    Syntax {
        /// 1-based line in the template.
        line: usize,
        /// The parser's description (from the template source only).
        detail: String,
    },
    /// A variable or attribute the template uses does not exist.
    #[error("undefined variable or key at line {line} in `{expression}`")]
    UndefinedVariable {
        /// 1-based line in the template.
        line: usize,
        /// The template text of the failing expression.
        expression: String,
    },
    /// One of kuvert's filters refused its input.
    #[error("filter `{filter}` failed at line {line}: {reason}")]
    Filter {
        /// The filter's name.
        filter: &'static str,
        /// 1-based line in the template.
        line: usize,
        /// What was wrong with the input (never the input itself).
        reason: Cow<'static, str>,
    },
    /// Any other failure while rendering (wrong types, unknown filter, out of fuel, ...).
    #[error("template failed at line {line}: {cause} in `{expression}`")]
    Render {
        /// 1-based line in the template.
        line: usize,
        /// What went wrong.
        cause: String,
        /// The template text of the failing expression.
        expression: String,
    },
    /// The rendered value is larger than allowed.
    #[error("template output exceeds {limit} bytes")]
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl TemplateError {
    /// Stable PascalCase category, used as condition reason, event reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            TemplateError::InvalidDelimiters { .. } => "InvalidDelimiters",
            TemplateError::Syntax { .. } => "TemplateSyntax",
            TemplateError::UndefinedVariable { .. } => "UndefinedVariable",
            TemplateError::Filter { .. } => "TemplateFilter",
            TemplateError::Render { .. } => "TemplateRender",
            TemplateError::OutputTooLarge { .. } => "OutputTooLarge",
        }
    }
}

/// How a kuvert filter failed; travels inside a minijinja error as its source.
#[derive(Debug)]
pub(super) struct FilterFailure {
    pub(super) filter: &'static str,
    pub(super) reason: Cow<'static, str>,
}

impl fmt::Display for FilterFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.filter, self.reason)
    }
}

impl std::error::Error for FilterFailure {}

/// A minijinja error for a failed filter. `reason` must not contain any input value.
pub(super) fn filter_error(
    filter: &'static str,
    reason: impl Into<Cow<'static, str>>,
) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, "filter failed").with_source(FilterFailure {
        filter,
        reason: reason.into(),
    })
}

/// Longest expression text quoted in a message.
const MAX_EXPRESSION_CHARS: usize = 80;

/// Reduces a minijinja error to a [`TemplateError`] holding only template text.
pub(super) fn from_minijinja(err: &minijinja::Error, source: &str) -> TemplateError {
    let line = err.line().unwrap_or(0);
    if let Some(failure) = find_filter_failure(err) {
        return TemplateError::Filter {
            filter: failure.filter,
            line,
            reason: failure.reason.clone(),
        };
    }
    let expression = expression_text(err, source);
    match err.kind() {
        ErrorKind::SyntaxError | ErrorKind::BadEscape => TemplateError::Syntax {
            line,
            detail: err
                .detail()
                .unwrap_or("invalid syntax")
                .chars()
                .take(200)
                .collect(),
        },
        ErrorKind::UndefinedError => TemplateError::UndefinedVariable { line, expression },
        kind => TemplateError::Render {
            line,
            cause: cause(kind, err),
            expression,
        },
    }
}

fn find_filter_failure(err: &minijinja::Error) -> Option<&FilterFailure> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = current {
        if let Some(failure) = e.downcast_ref::<FilterFailure>() {
            return Some(failure);
        }
        current = e.source();
    }
    None
}

fn expression_text(err: &minijinja::Error, source: &str) -> String {
    let Some(text) = err.range().and_then(|range| source.get(range)) else {
        return "?".to_string();
    };
    let mut quoted: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_EXPRESSION_CHARS)
        .collect();
    if text.chars().count() > MAX_EXPRESSION_CHARS {
        quoted.push('…');
    }
    quoted
}

/// A description of the failure. minijinja's detail is kept only where it is built from the
/// template's own text (names of filters, tests, functions, methods, argument counts).
fn cause(kind: ErrorKind, err: &minijinja::Error) -> String {
    let generic = match kind {
        ErrorKind::UnknownFilter => "unknown filter",
        ErrorKind::UnknownTest => "unknown test",
        ErrorKind::UnknownFunction => "unknown function",
        ErrorKind::UnknownMethod => "unknown method",
        ErrorKind::TooManyArguments => "too many arguments",
        ErrorKind::MissingArgument => "missing argument",
        ErrorKind::TemplateNotFound | ErrorKind::BadInclude => {
            "templates cannot include, import or extend other templates"
        }
        ErrorKind::OutOfFuel => "the template exceeded its work budget (too many loop iterations)",
        ErrorKind::InvalidOperation => "invalid operation on a value of this type",
        ErrorKind::NonPrimitive => "expected a string or number",
        ErrorKind::NonKey => "invalid map key",
        ErrorKind::BadSerialization => "value cannot be serialized",
        ErrorKind::WriteFailure => "output could not be written",
        _ => "evaluation failed",
    };
    let detail_is_template_text = matches!(
        kind,
        ErrorKind::UnknownFilter
            | ErrorKind::UnknownTest
            | ErrorKind::UnknownFunction
            | ErrorKind::UnknownMethod
            | ErrorKind::TooManyArguments
            | ErrorKind::MissingArgument
    );
    match err.detail() {
        Some(detail) if detail_is_template_text => format!("{generic} ({detail})"),
        _ => generic.to_string(),
    }
}
