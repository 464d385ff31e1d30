//! When the users want more than a cap allows. Session slots are a queue:
//! with `c` slots and an offered load of `a` Erlangs (sessions wanted at
//! once at peak), a new session waits for a slot as in an M/M/c queue
//! (Erlang C). Past `a ≥ c` the queue grows without bound. Fixed replicas
//! cannot queue: the work they cannot take is refused or slowed.

use serde::Serialize;

/// The mean wait for a session slot we aim for.
pub const WAIT_TARGET_S: f64 = 30.0;
/// How long a session holds its slot when the app does not say
/// (`max_duration`): a stated assumption.
pub const DEFAULT_SESSION_S: f64 = 15.0 * 60.0;

/// Something the users at this level want more of than the app allows.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Shortfall {
    /// `sessions compile` or `service api`.
    pub what: String,
    /// Wanted at peak: sessions at once, or replicas.
    pub wanted: u32,
    /// What the cap (`max_total`, fixed `replicas`, `autoscaling.max`) allows.
    pub allowed: u32,
    /// For sessions: the mean wait for a slot at peak, in seconds; `None`
    /// when the load exceeds the slots and the queue grows without bound.
    pub mean_wait_s: Option<f64>,
    /// Slots (or replicas) that meet the target.
    pub needed: u32,
    /// The monthly total with every binding cap of the estimate raised to
    /// what it needs (one figure for the app, not per shortfall).
    pub total_if_met: Option<f64>,
    /// `total_if_met` prices every line; otherwise it is a lower bound and
    /// `met_gap` says what could not be priced (often: no size of this
    /// target holds it — time for the next target on the growth path).
    pub met_complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met_gap: Option<String>,
    pub model: String,
}

/// Erlang C: the chance that a new arrival waits, with `c` servers and
/// an offered load of `a` Erlangs (`a < c`). Computed through Erlang B's
/// recurrence, which stays stable for thousands of servers.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    let c = c as f64;
    c * b / (c - a * (1.0 - b))
}

/// Mean wait for a slot, in seconds; `None` when `a ≥ c` (unbounded).
pub fn mean_wait_s(c: u32, a: f64, hold_s: f64) -> Option<f64> {
    if a >= c as f64 {
        return None;
    }
    if a <= 0.0 {
        return Some(0.0);
    }
    Some(erlang_c(c, a) * hold_s / (c as f64 - a))
}

/// The fewest slots whose mean wait is at most `target_s`.
pub fn slots_for(a: f64, hold_s: f64, target_s: f64) -> u32 {
    let mut c = (a.floor() as u32).saturating_add(1);
    // The wait falls quickly once c passes a; a + 10√a + 10 is far enough.
    let limit = (a + 10.0 * a.sqrt() + 10.0).ceil() as u32;
    while c < limit && mean_wait_s(c, a, hold_s).is_none_or(|w| w > target_s) {
        c += 1;
    }
    c
}

/// The shortfall of session slots capped at `cap` when `active` sessions
/// are wanted at once, each held `hold_s`.
pub fn sessions(name: &str, active: u32, cap: u32, hold_s: f64) -> Option<Shortfall> {
    let a = active as f64;
    let wait = mean_wait_s(cap, a, hold_s);
    if wait.is_some_and(|w| w <= WAIT_TARGET_S) {
        return None;
    }
    Some(Shortfall {
        what: format!("sessions {name}"),
        wanted: active,
        allowed: cap,
        mean_wait_s: wait,
        needed: slots_for(a, hold_s, WAIT_TARGET_S),
        total_if_met: None,
        met_complete: true,
        met_gap: None,
        model: format!(
            "M/M/c (Erlang C): {active} sessions wanted at once at peak, each holding a slot {:.0} min; target mean wait {WAIT_TARGET_S:.0} s",
            hold_s / 60.0
        ),
    })
}

impl Shortfall {
    /// One line for people: what is short, what it costs, what meets it.
    pub fn describe(&self) -> String {
        let wait = match self.mean_wait_s {
            None => "the queue grows without bound".to_string(),
            Some(w) if w >= 120.0 => format!("mean wait {:.0} min", w / 60.0),
            Some(w) => format!("mean wait {w:.0} s"),
        };
        let cost = match (self.total_if_met, &self.met_gap) {
            (None, _) => String::new(),
            (Some(t), None) if self.met_complete => {
                format!(" (the app with every cap met: ${t:.2}/month)")
            }
            (Some(t), gap) => format!(
                " (the app with every cap met: ≥ ${t:.2}/month; {})",
                gap.as_deref().unwrap_or("some lines cannot be priced")
            ),
        };
        if self.what.starts_with("sessions") {
            format!(
                "{}: {} wanted at once, {} slots allowed: {wait}; {} slots keep the mean wait under {WAIT_TARGET_S:.0} s{cost}",
                self.what, self.wanted, self.allowed, self.needed
            )
        } else {
            format!(
                "{}: needs {} replicas, capped at {}: requests beyond the cap are slowed or refused; {} replicas meet the load{cost}",
                self.what, self.wanted, self.allowed, self.needed
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_textbook_values_and_the_wait_grows_with_load() {
        // 10 servers, 8 Erlangs: P(wait) ≈ 0.409 (standard tables).
        assert!(
            (erlang_c(10, 8.0) - 0.409).abs() < 0.002,
            "{}",
            erlang_c(10, 8.0)
        );
        // One server: P(wait) = utilisation.
        assert!((erlang_c(1, 0.5) - 0.5).abs() < 1e-9);
        let w = |a| mean_wait_s(5, a, 600.0).unwrap();
        assert!(w(2.0) < w(4.0) && w(4.0) < w(4.9));
        assert_eq!(mean_wait_s(5, 5.0, 600.0), None, "a ≥ c never drains");
        assert_eq!(mean_wait_s(5, 200.0, 600.0), None);
    }

    #[test]
    fn enough_slots_keep_the_wait_under_target_and_one_fewer_does_not() {
        for a in [0.5, 3.0, 40.0, 200.0, 2000.0] {
            let c = slots_for(a, DEFAULT_SESSION_S, WAIT_TARGET_S);
            let w = mean_wait_s(c, a, DEFAULT_SESSION_S).unwrap();
            assert!(w <= WAIT_TARGET_S, "{a}: {c} slots wait {w}");
            if c > a.floor() as u32 + 1 {
                let fewer = mean_wait_s(c - 1, a, DEFAULT_SESSION_S);
                assert!(
                    fewer.is_none_or(|w| w > WAIT_TARGET_S),
                    "{a}: {c} is not the fewest"
                );
            }
        }
        // will-it-compile at 1,000 users: 200 wanted at once, 5 slots.
        let s = sessions("compile", 200, 5, DEFAULT_SESSION_S).unwrap();
        assert_eq!(s.mean_wait_s, None);
        assert!(s.needed > 200 && s.needed < 240, "{}", s.needed);
        assert!(sessions("compile", 2, 5, DEFAULT_SESSION_S).is_none());
    }
}
