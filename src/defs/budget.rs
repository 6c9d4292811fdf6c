//! The cost bound of one evaluation. The daemon evaluates `defs/` on every
//! reload, so no input may take it down: every evaluation runs against a
//! budget of *work* (evaluation steps, value-level unifications) and of
//! *bytes* (an estimate of what the evaluator allocates: vertices,
//! conjuncts, environments, struct fields, strings). The first charge past
//! either limit records where it happened; from then on every step fails
//! at once, and the evaluation reports only that one error.
//!
//! The meter is per thread: every evaluation runs on its own helper thread
//! (`with_stack` in `mod.rs`), and value-level code (`value.rs`) charges it
//! without holding the evaluator.

use std::cell::RefCell;

use crate::defs::error::{CueError, Files, Pos};

/// Work every evaluation may do, plus [`WORK_PER_BYTE`] per byte of
/// source: realistic trees use a small fraction (200 service files take
/// well under a million steps).
pub const BASE_WORK: u64 = 4_000_000;
pub const WORK_PER_BYTE: u64 = 64;
/// Estimated bytes every evaluation may allocate, plus [`BYTES_PER_BYTE`]
/// per byte of source; keeps a file under 64 KiB well under 64 MiB.
pub const BASE_BYTES: u64 = 16 << 20;
pub const BYTES_PER_BYTE: u64 = 128;

/// Counters of the evaluation running on this thread.
#[derive(Default)]
struct Meter {
    work: u64,
    bytes: u64,
    work_limit: u64,
    byte_limit: u64,
    /// Set once a limit is passed: what was exceeded (the position is
    /// added by the first evaluator step that notices).
    exceeded: Option<String>,
    /// The error reported for the whole evaluation.
    error: Option<CueError>,
}

thread_local! {
    static METER: RefCell<Option<Meter>> = const { RefCell::new(None) };
}

/// Starts metering an evaluation of `source_bytes` bytes of CUE on this
/// thread; dropping the guard stops it.
pub fn start(source_bytes: usize) -> Guard {
    let (work_limit, byte_limit) = limits(source_bytes);
    METER.with(|m| {
        *m.borrow_mut() = Some(Meter {
            work_limit,
            byte_limit,
            ..Default::default()
        })
    });
    Guard(())
}

/// The work and byte limits for `source_bytes` bytes of CUE.
pub fn limits(source_bytes: usize) -> (u64, u64) {
    let n = source_bytes as u64;
    (
        BASE_WORK.saturating_add(n.saturating_mul(WORK_PER_BYTE)),
        BASE_BYTES.saturating_add(n.saturating_mul(BYTES_PER_BYTE)),
    )
}

/// Stops the meter of this thread when dropped.
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        METER.with(|m| *m.borrow_mut() = None);
    }
}

/// Charges `work` steps and `bytes` bytes; false once the budget is spent
/// (always true when no evaluation is metered on this thread).
pub fn charge(work: u64, bytes: u64) -> bool {
    METER.with(|m| {
        let mut m = m.borrow_mut();
        let Some(m) = m.as_mut() else { return true };
        if m.exceeded.is_some() {
            return false;
        }
        m.work = m.work.saturating_add(work);
        m.bytes = m.bytes.saturating_add(bytes);
        if m.work > m.work_limit {
            m.exceeded = Some(format!("more than {} evaluation steps", m.work_limit));
        } else if m.bytes > m.byte_limit {
            m.exceeded = Some(format!("more than {} MiB of values", m.byte_limit >> 20));
        }
        m.exceeded.is_none()
    })
}

/// The error for an evaluation step at `pos` once the budget is spent; the
/// first one is kept as the evaluation's error.
pub fn exceeded_at(files: &Files, pos: Pos) -> Option<CueError> {
    METER.with(|m| {
        let mut m = m.borrow_mut();
        let m = m.as_mut()?;
        let what = m.exceeded.clone()?;
        let e = files.err(
            pos,
            format!("evaluation budget exceeded ({what}); the input is too costly to evaluate"),
        );
        if m.error.is_none() {
            m.error = Some(e.clone());
        }
        Some(e)
    })
}

/// The error of an evaluation that ran out of budget, if it did.
pub fn error() -> Option<CueError> {
    METER.with(|m| {
        let m = m.borrow();
        let m = m.as_ref()?;
        match (&m.error, &m.exceeded) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(what)) => Some(CueError::bare(
                "",
                format!("evaluation budget exceeded ({what}); the input is too costly to evaluate"),
            )),
            (None, None) => None,
        }
    })
}

/// Work and bytes charged so far on this thread (for tests and benches).
pub fn used() -> (u64, u64) {
    METER.with(|m| m.borrow().as_ref().map(|m| (m.work, m.bytes)).unwrap_or((0, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_stays_spent() {
        let _g = start(0);
        assert!(charge(BASE_WORK, 0));
        assert!(!charge(1, 0));
        assert!(!charge(0, 0));
        let files = Files {
            names: vec!["a.cue".into()],
        };
        let e = exceeded_at(
            &files,
            Pos {
                file: 0,
                line: 3,
                col: 4,
            },
        )
        .unwrap();
        assert!(e.to_string().starts_with("a.cue:3:4: evaluation budget exceeded"));
        assert_eq!(error(), Some(e));
    }

    #[test]
    fn no_meter_means_no_limit() {
        assert!(charge(u64::MAX, u64::MAX));
        assert_eq!(error(), None);
    }
}
