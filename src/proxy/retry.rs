//! The one place that decides what happens after an upstream failure
//! (SPEC §4 "Replay rules", RFC 9110 §9.2.2).
//!
//! A request may be sent again only if it provably never left the daemon,
//! or if its method is idempotent and its body was buffered — and never to
//! a new instance more than once. A failure on a pooled connection is first
//! retried once on a fresh connection to the same container: a keep-alive
//! connection the container (or something between) closed is not a dead
//! container. Only an unreachable address, or the engine saying the
//! container is not running, means gone.

use http::StatusCode;

/// Where in the exchange a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePhase {
    /// No connection could be made: refused, unreachable, timed out.
    Connect,
    /// The connection failed while it was being made (reset), or while the
    /// request or response was under way.
    Exchange,
    /// The response head did not arrive within the response timeout.
    ResponseTimeout,
}

/// How many times one request may be retried on a fresh connection to the
/// same container. Two, not one: whatever resets connections (a conntrack
/// flush, `ss -K`, a middlebox) tends to reset the fresh one made during
/// the same sweep too.
pub const FRESH_CONNECTION_RETRIES: u8 = 2;

/// What has been tried for one request.
#[derive(Debug, Default)]
pub struct Attempts {
    fresh_connections: u8,
    new_instance: bool,
}

/// What to do after a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send again on a fresh connection to the same container.
    FreshConnection,
    /// Ask the engine whether the container runs: if it does, the failure is
    /// the service's (502); if not, forget the instance and, when
    /// `may_replay`, send the request to a new one.
    AskEngine { may_replay: bool },
    /// Answer the client with this status.
    Fail(StatusCode),
}

/// Decides the next step after a failure in `phase`. `sent`: the request
/// may have reached the container; `replayable`: its method is idempotent
/// and its body was buffered. Records the attempt it allows in `attempts`.
pub fn after_failure(phase: FailurePhase, sent: bool, replayable: bool, attempts: &mut Attempts) -> Next {
    if phase == FailurePhase::ResponseTimeout {
        return Next::Fail(StatusCode::GATEWAY_TIMEOUT);
    }
    let safe_to_resend = !sent || replayable;
    if phase == FailurePhase::Exchange && safe_to_resend && attempts.fresh_connections < FRESH_CONNECTION_RETRIES {
        attempts.fresh_connections += 1;
        return Next::FreshConnection;
    }
    let may_replay = safe_to_resend && !attempts.new_instance;
    if may_replay {
        attempts.new_instance = true;
    }
    Next::AskEngine { may_replay }
}

#[cfg(test)]
mod tests {
    use super::FailurePhase::*;
    use super::*;

    #[test]
    fn a_sent_post_is_never_sent_again() {
        let mut a = Attempts::default();
        assert_eq!(
            after_failure(Exchange, true, false, &mut a),
            Next::AskEngine { may_replay: false }
        );
    }

    #[test]
    fn a_post_that_never_left_is_retried_on_a_fresh_connection() {
        let mut a = Attempts::default();
        assert_eq!(after_failure(Exchange, false, false, &mut a), Next::FreshConnection);
        assert_eq!(
            after_failure(Exchange, true, false, &mut a),
            Next::AskEngine { may_replay: false }
        );
    }

    #[test]
    fn an_idempotent_buffered_request_tries_fresh_connections_then_one_new_instance() {
        let mut a = Attempts::default();
        for _ in 0..FRESH_CONNECTION_RETRIES {
            assert_eq!(after_failure(Exchange, true, true, &mut a), Next::FreshConnection);
        }
        assert_eq!(
            after_failure(Exchange, true, true, &mut a),
            Next::AskEngine { may_replay: true }
        );
        assert_eq!(
            after_failure(Exchange, true, true, &mut a),
            Next::AskEngine { may_replay: false }
        );
    }

    #[test]
    fn an_unreachable_container_is_asked_about_at_once_and_replayed_once() {
        let mut a = Attempts::default();
        assert_eq!(
            after_failure(Connect, false, false, &mut a),
            Next::AskEngine { may_replay: true }
        );
        assert_eq!(
            after_failure(Connect, false, false, &mut a),
            Next::AskEngine { may_replay: false }
        );
    }

    #[test]
    fn a_response_timeout_is_not_retried() {
        let mut a = Attempts::default();
        assert_eq!(
            after_failure(ResponseTimeout, true, true, &mut a),
            Next::Fail(StatusCode::GATEWAY_TIMEOUT)
        );
    }
}
