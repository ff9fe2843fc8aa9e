//! Pins: add, remove, list, status. A CID may carry several pins, one per owner (and, for
//! the Pinning Service API, several of one owner); the caller's pins are its own.
//!
//! Every pin lives in a namespace (`default` unless the pinner names one): pinning and
//! unpinning need the writer role — and a token that allows `pin` — in the pin's namespace,
//! so a CI job's token narrowed to `--only pin --namespace ci` pins and unpins there and
//! nowhere else. An owner's pin of a CID lives in one namespace. Pins are listed by owner,
//! not by namespace: an administrator sees every pin, anyone else its own.

use crate::auth::{DEFAULT_NAMESPACE, Op, authorize, is_admin};
use crate::journal::{self, action};
use crate::{Caller, Error, ErrorKind, Result};
use kiln_core::Cid;
use kiln_core::cids::ContentPath;
use kiln_core::export;
use kiln_store::{NewPin, Pin, PinMode, PinOwner, PinStatus, Store, Unpinned};

/// The longest pin name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Check a pin name: at most [`MAX_NAME_BYTES`], no control characters.
pub fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the name is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
                name.len()
            ),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the name holds control characters",
        ));
    }
    Ok(())
}

/// What `path` (`CID[/path…]`, with or without `/ipfs/`) names.
pub fn resolve(store: &Store, path: &str) -> Result<Cid> {
    Ok(export::resolve(store, &ContentPath::parse(path)?)?)
}

/// The namespace a request names, checked (none: the default one).
pub fn namespace(ns: Option<&str>) -> Result<&str> {
    match ns.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(DEFAULT_NAMESPACE),
        Some(crate::users::ALL) => Err(Error::invalid(
            "a pin lives in one namespace: name one (\"*\" is every namespace, for roles only)",
        )),
        Some(n) => {
            crate::users::check_namespace(n)?;
            Ok(n)
        }
    }
}

/// Pin what `path` names for the caller (recursively or directly, under `name`, in
/// `namespace` — none: the default one): the CID pinned. Pinning again updates the caller's
/// pin; others' pins of the CID are untouched.
pub fn add(
    store: &Store,
    caller: &Caller,
    path: &str,
    mode: PinMode,
    name: Option<&str>,
    namespace: Option<&str>,
) -> Result<Cid> {
    let ns = self::namespace(namespace)?;
    authorize(caller, Op::Pin, ns)?;
    let pinned = (|| {
        if let Some(n) = name {
            check_name(n)?;
        }
        let cid = resolve(store, path)?;
        let what = if mode == PinMode::Recursive {
            "recursive"
        } else {
            "direct"
        };
        let mut detail = match name {
            Some(n) => format!("{what}, named {n}"),
            None => what.to_string(),
        };
        if ns != DEFAULT_NAMESPACE {
            detail.push_str(&format!(", in {ns}"));
        }
        let entry = journal::entry(caller, action::PIN, cid.to_string()).detail(detail);
        let pin = NewPin::new(caller.owner(), mode)
            .named(name)
            .in_namespace(ns)
            .within(crate::quotas::pin_limit(store, caller)?);
        store.pin_add_recorded(&cid, &pin, &entry)?;
        Ok(cid)
    })();
    pinned.map_err(|e| journal::failed(store, caller, action::PIN, path, e))
}

/// The pin a caller makes (with its name, if any), or with `owner` a pin on behalf of that
/// owner: kiln's own owners (`rootfs` for a root file system imported through the daemon)
/// or another identity, which only the local administrator may name.
pub fn pin_for(
    caller: &Caller,
    owner: Option<&str>,
    mode: PinMode,
    name: Option<&str>,
    namespace: Option<&str>,
) -> Result<NewPin> {
    let ns = self::namespace(namespace)?;
    authorize(caller, Op::Pin, ns)?;
    if let Some(n) = name {
        check_name(n)?;
    }
    let owner = match owner {
        None => caller.owner(),
        Some(o) => {
            let o =
                PinOwner::new(o).map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?;
            if o != caller.owner() && !is_admin(caller) {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    format!("{} may not pin on behalf of {o}", caller.who),
                ));
            }
            o
        }
    };
    Ok(NewPin::new(owner, mode).named(name).in_namespace(ns))
}

/// What [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The CID unpinned.
    pub cid: Cid,
    /// The pins removed and those of other owners that remain.
    pub pins: Unpinned,
}

/// Whose pins [`remove`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    /// The caller's own.
    Mine,
    /// Those of this owner (another owner's: the local administrator only).
    Of(PinOwner),
    /// Every owner's (the local administrator only).
    All,
}

/// Remove the pins of what `path` names that `whose` says. Other owners' pins stay;
/// [`Removed`] says whose.
pub fn remove(store: &Store, caller: &Caller, path: &str, whose: &Whose) -> Result<Removed> {
    crate::auth::known(caller)?;
    let mine = caller.owner();
    let others = match whose {
        Whose::Mine => false,
        Whose::Of(o) => *o != mine,
        Whose::All => true,
    };
    if others && !is_admin(caller) {
        // The role is the first thing a caller lacks (a reader may unpin nothing at all).
        authorize(caller, Op::Pin, DEFAULT_NAMESPACE)?;
        return Err(Error::new(
            ErrorKind::Forbidden,
            format!("{} may not remove other owners' pins", caller.who),
        )
        .because(crate::auth::reason::NOT_OWNER));
    }
    // The role it needs is the writer's in the namespace of each pin it would take (in the
    // default one when it would take none: the store then says so).
    let owner_of = |p: &Pin| match whose {
        Whose::Mine => p.owner == mine,
        Whose::Of(o) => p.owner == *o,
        Whose::All => true,
    };
    // Resolved once: the namespaces below and the removal use the same CID (a path that
    // does not resolve is a failure the removal records).
    let resolved = resolve(store, path);
    let namespaces: Vec<String> = match resolved
        .as_ref()
        .ok()
        .map(|cid| store.pins_of(cid))
        .transpose()?
    {
        Some(pins) => {
            let mut ns: Vec<String> = pins
                .iter()
                .filter(|p| owner_of(p))
                .map(|p| p.namespace.clone())
                .collect();
            ns.sort();
            ns.dedup();
            ns
        }
        None => Vec::new(),
    };
    if namespaces.is_empty() {
        authorize(caller, Op::Pin, DEFAULT_NAMESPACE)?;
    }
    for ns in &namespaces {
        authorize(caller, Op::Pin, ns)?;
    }
    let removed = (|| {
        let cid = resolved?;
        let note = |u: &Unpinned| {
            let gone = owners(&u.removed)
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let left = owners(&u.remaining)
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let detail = if left.is_empty() {
                format!("removed the pins of {gone}")
            } else {
                format!("removed the pins of {gone}; still pinned by {left}")
            };
            journal::entry(caller, action::UNPIN, cid.to_string()).detail(detail)
        };
        let owner = match whose {
            Whose::Mine => Some(&mine),
            Whose::Of(o) => Some(o),
            Whose::All => None,
        };
        let pins = store.pin_rm_recorded(&cid, owner, &note)?;
        Ok(Removed { cid, pins })
    })();
    removed.map_err(|e| journal::failed(store, caller, action::UNPIN, path, e))
}

/// Every pin, oldest first, each with its owner and namespace: all of them for an
/// administrator, the caller's own for anyone else it knows (its own pins are its to see,
/// whatever its role or its token's scope: a token narrowed to pinning in one namespace
/// lists what it pinned).
pub fn list(store: &Store, caller: &Caller) -> Result<Vec<Pin>> {
    crate::auth::known(caller)?;
    let pins = store.pins()?;
    if is_admin(caller) {
        return Ok(pins);
    }
    let me = caller.owner();
    Ok(pins.into_iter().filter(|p| p.owner == me).collect())
}

/// The blocks pinned only through recursive pins.
pub fn indirect(store: &Store, caller: &Caller) -> Result<Vec<Cid>> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    Ok(store.indirect_pins()?)
}

/// How `cid` is pinned (its strongest own pin, else indirectly), if it is.
pub fn status(store: &Store, caller: &Caller, cid: &Cid) -> Result<Option<PinStatus>> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    Ok(store.pin_status(cid)?)
}

/// The owners of `pins`, each once, in order, for messages ("pinned by rootfs, build").
pub fn owners(pins: &[Pin]) -> Vec<&PinOwner> {
    let mut out: Vec<&PinOwner> = Vec::new();
    for p in pins {
        if !out.contains(&&p.owner) {
            out.push(&p.owner);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Via;
    use kiln_store::StoreOptions;

    fn stored(store: &Store, data: &[u8]) -> Cid {
        let mut s = store.session().unwrap();
        let opts =
            kiln_core::import::ImportOptions::from_profile(kiln_core::import::Profile::KuboV1);
        let imported = kiln_core::import::import_bytes(&mut s, data, &opts).unwrap();
        s.commit().unwrap();
        imported.cid
    }

    #[test]
    fn a_schedule_and_the_administrator_hold_their_own_pins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let cid = stored(&store, b"shared");
        let me = Caller::local(Via::Cli);
        let sched = Caller::schedule(4);
        add(
            &store,
            &sched,
            &cid.to_string(),
            PinMode::Recursive,
            None,
            None,
        )
        .unwrap();
        add(
            &store,
            &me,
            &cid.to_string(),
            PinMode::Recursive,
            Some("mine"),
            Some("team"),
        )
        .unwrap();
        assert!(
            list(&store, &me)
                .unwrap()
                .iter()
                .any(|p| p.namespace == "team" && p.owner == me.owner())
        );
        let gone = remove(&store, &me, &cid.to_string(), &Whose::Mine).unwrap();
        assert_eq!(gone.pins.removed.len(), 1);
        let left: Vec<String> = owners(&gone.pins.remaining)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(left, ["schedule:4"]);
        let e = remove(&store, &sched, &cid.to_string(), &Whose::All).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        let e = remove(&store, &sched, &cid.to_string(), &Whose::Of(me.owner())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        let e = add(
            &store,
            &me,
            &cid.to_string(),
            PinMode::Direct,
            Some("a\nb"),
            None,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        for bad in ["*", "no spaces", "a/b"] {
            let e = add(
                &store,
                &me,
                &cid.to_string(),
                PinMode::Recursive,
                None,
                Some(bad),
            );
            assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        remove(&store, &me, &cid.to_string(), &Whose::Of(sched.owner())).unwrap();
        assert!(list(&store, &me).unwrap().is_empty());
    }
}
