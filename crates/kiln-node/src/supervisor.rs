//! The daemon's long-lived workers, owned in one place: each runs on a named thread of its
//! own, in a [`Group`], and the node stops them in order at shutdown — the scheduler, then
//! the checks it started, then the builds — waiting for each group up to a deadline. A
//! worker that outlives its deadline is named in the log and left to die with the process.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// What a worker does, in the order the node stops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The scheduler's loop.
    Scheduler,
    /// A schedule's check (it may submit a build).
    Check,
    /// A submission's build.
    Build,
}

impl Group {
    fn slot(self) -> usize {
        match self {
            Group::Scheduler => 0,
            Group::Check => 1,
            Group::Build => 2,
        }
    }
}

#[derive(Default)]
struct State {
    /// Workers not yet joined: name, group, thread.
    workers: Vec<(String, Group, JoinHandle<()>)>,
    /// How many of each group still run.
    live: [usize; 3],
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    ended: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts its worker out when the thread ends, however it ends (a panic too).
struct Running {
    inner: Arc<Inner>,
    group: Group,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.live[self.group.slot()] = st.live[self.group.slot()].saturating_sub(1);
        drop(st);
        self.inner.ended.notify_all();
    }
}

/// The owner of the node's worker threads.
#[derive(Default, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// A supervisor with no workers.
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Run `work` on a new thread called `name`, in `group`. Workers that have ended are
    /// joined on the way.
    pub fn spawn(
        &self,
        name: String,
        group: Group,
        work: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        {
            let mut st = self.inner.lock();
            reap(&mut st);
            st.live[group.slot()] += 1;
        }
        // Made before the thread, so a thread that cannot start counts itself out too.
        let running = Running {
            inner: self.inner.clone(),
            group,
        };
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let _running = running;
                work();
            })?;
        self.inner.lock().workers.push((name, group, handle));
        Ok(())
    }

    /// How many workers of `group` run now.
    pub fn running(&self, group: Group) -> usize {
        self.inner.lock().live[group.slot()]
    }

    /// Wait until every worker of `group` has ended, or `deadline`: the names of those
    /// still running then (they are left to end on their own).
    pub fn join(&self, group: Group, deadline: Instant) -> Vec<String> {
        let mut st = self.inner.lock();
        while st.live[group.slot()] > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self
                .inner
                .ended
                .wait_timeout(st, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if st.live[group.slot()] == 0 {
            // Every worker of the group has counted itself out: its thread is returning
            // (it may not have quite finished yet), so join it rather than name it.
            let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut st.workers)
                .into_iter()
                .partition(|(_, g, _)| *g == group);
            st.workers = others;
            for (name, _, h) in mine {
                if h.join().is_err() {
                    tracing::warn!(worker = %name, "a worker ended in a panic");
                }
            }
        }
        reap(&mut st);
        st.workers
            .iter()
            .filter(|(_, g, _)| *g == group)
            .map(|(name, _, _)| name.clone())
            .collect()
    }
}

/// Join the workers that have ended.
fn reap(st: &mut State) {
    let (ended, running): (Vec<_>, Vec<_>) = std::mem::take(&mut st.workers)
        .into_iter()
        .partition(|(_, _, h)| h.is_finished());
    st.workers = running;
    for (name, _, h) in ended {
        if h.join().is_err() {
            tracing::warn!(worker = %name, "a worker ended in a panic");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn groups_are_joined_with_a_deadline_and_laggards_are_named() {
        let sup = Supervisor::new();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        sup.spawn("build s1".into(), Group::Build, move || {
            while !s.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .unwrap();
        sup.spawn("check 1".into(), Group::Check, || {}).unwrap();
        sup.spawn("check 2".into(), Group::Check, || panic!("a failing check"))
            .unwrap();
        // The checks end (one in a panic): joined, none left.
        let far = Instant::now() + Duration::from_secs(30);
        assert!(sup.join(Group::Check, far).is_empty());
        assert_eq!(sup.running(Group::Check), 0);
        // The build does not end by its deadline: named.
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(sup.join(Group::Build, soon), ["build s1"]);
        assert!(Instant::now() >= soon);
        stop.store(true, Ordering::SeqCst);
        assert!(sup.join(Group::Build, far).is_empty());
        assert_eq!(sup.running(Group::Build), 0);
    }
}
