//! The crate's error type.
//!
//! Structural problems (ranks, shapes) are found without touching tensor data and are reported
//! by every constructor. Value problems (a negative scale, a probability outside `[0, 1]`, a
//! value outside the support) need the data on the host, so they are only looked for when asked:
//! see [`Distribution::validate`](crate::Distribution::validate) and
//! [`Distribution::check_support`](crate::Distribution::check_support).

use core::fmt;

/// Every error this crate returns.
///
/// Each variant names the distribution or function, the argument, what was expected and what was
/// found, so that the message alone is enough to fix the call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must broadcast against each other do not.
    ShapeMismatch {
        /// The distribution or function that compared them.
        context: &'static str,
        /// Name of the first argument.
        left_name: &'static str,
        /// Shape of the first argument.
        left: Vec<usize>,
        /// Name of the second argument.
        right_name: &'static str,
        /// Shape of the second argument.
        right: Vec<usize>,
    },
    /// A value's event dimensions differ from the distribution's event shape. Event
    /// dimensions never broadcast: a value in another layout (`[B, 28, 28, 1]` against an
    /// event of `[1, 28, 28]`) would otherwise be scored as a different, larger event.
    EventShapeMismatch {
        /// The distribution or function that compared them.
        context: &'static str,
        /// The argument whose trailing dimensions are wrong (`value`, or `q` of a KL).
        argument: &'static str,
        /// That argument's whole shape.
        shape: Vec<usize>,
        /// The event shape its trailing dimensions must equal.
        event_shape: Vec<usize>,
    },
    /// A tensor or a requested output has the wrong rank.
    RankMismatch {
        /// The distribution or function that checked it.
        context: &'static str,
        /// The argument whose rank is wrong.
        argument: &'static str,
        /// What the rank should be, in words (for example `"2 (value rank 3 - event rank 1)"`).
        expected: String,
        /// The rank that was given.
        actual: usize,
    },
    /// A parameter holds a value outside its domain (found by an opt-in validation).
    InvalidParameter {
        /// The distribution.
        distribution: &'static str,
        /// The parameter's name.
        parameter: &'static str,
        /// The domain, in words (for example `"finite and > 0"`).
        expected: &'static str,
        /// The first offending value.
        value: f64,
        /// Its position in the flattened (row-major) parameter tensor.
        index: usize,
    },
    /// A value passed to `log_prob` lies outside the distribution's support (opt-in check).
    OutsideSupport {
        /// The distribution.
        distribution: &'static str,
        /// The support, in words.
        support: &'static str,
        /// The first offending value.
        value: f64,
        /// Its position in the flattened (row-major) value tensor.
        index: usize,
    },
    /// An argument that is not a tensor is out of range (a temperature, a sample count, ...).
    InvalidArgument {
        /// The distribution or function.
        context: &'static str,
        /// The argument's name.
        argument: &'static str,
        /// What was expected, in words.
        expected: String,
        /// What was given, as text.
        actual: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch {
                context,
                left_name,
                left,
                right_name,
                right,
            } => write!(
                f,
                "{context}: shapes do not broadcast: `{left_name}` has shape {left:?} and \
                 `{right_name}` has shape {right:?} (each trailing dimension must be equal or 1)"
            ),
            Error::EventShapeMismatch {
                context,
                argument,
                shape,
                event_shape,
            } => {
                let n = event_shape.len();
                let tail = &shape[shape.len().saturating_sub(n)..];
                write!(
                    f,
                    "{context}: `{argument}` has shape {shape:?}, whose last {n} dimensions {tail:?} \
                     must equal the event_shape {event_shape:?} (event dimensions do not \
                     broadcast; only sample and batch dimensions do)"
                )
            }
            Error::RankMismatch {
                context,
                argument,
                expected,
                actual,
            } => write!(
                f,
                "{context}: `{argument}` has the wrong rank: expected {expected}, got {actual}"
            ),
            Error::InvalidParameter {
                distribution,
                parameter,
                expected,
                value,
                index,
            } => write!(
                f,
                "{distribution}: parameter `{parameter}` must be {expected}, but element {index} \
                 is {value}"
            ),
            Error::OutsideSupport {
                distribution,
                support,
                value,
                index,
            } => write!(
                f,
                "{distribution}: `value` must lie in the support {support}, but element {index} \
                 is {value}"
            ),
            Error::InvalidArgument {
                context,
                argument,
                expected,
                actual,
            } => write!(
                f,
                "{context}: `{argument}` must be {expected}, got {actual}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
