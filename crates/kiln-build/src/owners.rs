//! The pin owners of what kiln's build side keeps: build records and logs, the sources of
//! registered schedules, and root file systems. Each is an owner of its own, so a user's
//! `kiln pin rm` of the same CID never takes them away (and theirs never take the user's).

use kiln_store::PinOwner;

/// Build records and logs (pin names `STEP`, `check:STEP`, `failed:STEP`, `failed:STEP/log`).
pub const BUILD: &str = "build";
/// Root file systems imported with `kiln rootfs import` (pin name: the root file system's name).
pub const ROOTFS: &str = "rootfs";
/// The prefix of a schedule's owner, `schedule:N`: the source tree it builds.
pub const SCHEDULE_PREFIX: &str = "schedule:";

/// The prefix of an upload's owner, `upload:TOKEN`: a source tree a client imported for a
/// build it is about to submit (held until the submission takes it over).
pub const UPLOAD_PREFIX: &str = "upload:";
/// The prefix of a running submission's owner, `submission:N`: its source tree, held until
/// the build ends.
pub const SUBMISSION_PREFIX: &str = "submission:";

/// The owner of a running submission's source tree.
pub fn submission(n: u64) -> PinOwner {
    known(format!("{SUBMISSION_PREFIX}{n}"))
}

/// Whether `owner` holds a pin only for as long as a daemon runs (an upload or a running
/// submission): such pins left by a daemon that stopped are removed when the next starts.
pub fn is_transient(owner: &PinOwner) -> bool {
    owner.as_str().starts_with(UPLOAD_PREFIX) || owner.as_str().starts_with(SUBMISSION_PREFIX)
}

/// The owner of build records and logs.
pub fn build() -> PinOwner {
    known(BUILD.to_string())
}

/// The owner of root file systems.
pub fn rootfs() -> PinOwner {
    known(ROOTFS.to_string())
}

/// The owner of schedule `id`'s source tree.
pub fn schedule(id: i64) -> PinOwner {
    known(format!("{SCHEDULE_PREFIX}{id}"))
}

/// The schedule an owner is, if it is one.
pub fn schedule_of(owner: &PinOwner) -> Option<i64> {
    owner.as_str().strip_prefix(SCHEDULE_PREFIX)?.parse().ok()
}

fn known(s: String) -> PinOwner {
    // These are short, without spaces or control characters: always valid owners.
    PinOwner::new(s).unwrap_or_else(|e| unreachable!("{e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_owners_are_valid_and_schedules_read_back() {
        assert_eq!(super::build().as_str(), "build");
        assert_eq!(super::rootfs().as_str(), "rootfs");
        assert_eq!(super::schedule_of(&super::schedule(12)), Some(12));
        assert_eq!(super::schedule_of(&super::build()), None);
    }
}
