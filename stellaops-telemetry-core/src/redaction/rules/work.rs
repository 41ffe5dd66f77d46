//! A count of the bytes the rules examine, so tests can show that the work grows linearly
//! with a value's length. Outside tests the count compiles to nothing.

#[cfg(test)]
thread_local! {
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Records that `n` more bytes were examined (a no-op outside tests).
#[inline(always)]
pub(super) fn step(n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get().saturating_add(n as u64)));
    #[cfg(not(test))]
    let _ = n;
}

/// The bytes examined while `f` runs, on this thread.
#[cfg(test)]
pub(super) fn steps_of(f: impl FnOnce()) -> u64 {
    let before = STEPS.with(std::cell::Cell::get);
    f();
    STEPS.with(std::cell::Cell::get) - before
}
