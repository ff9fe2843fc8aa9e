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
