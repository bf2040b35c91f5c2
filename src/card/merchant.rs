//! Which merchant takes a subscriber's card payment, when an ISP has several.
//!
//! An ISP that is several legal entities has a merchant account at the provider for each,
//! and a subscriber's money must reach the entity whose subscriber they are. Each merchant
//! is a card system of its own (its keys, its callback URL, its ABillS `abills_id`), and its
//! `groups` (ABillS group ids) and/or `accounts` (a regular expression over the account)
//! say whom it takes; one without either takes whoever no other takes.
//!
//! The page cannot know whose subscriber is paying before the account is typed, so a
//! provider whose merchants pick their subscribers gets one button, and the merchant is
//! chosen after the account is looked up: the first of that provider's systems, in the
//! config's order, that takes the subscriber. A provider whose systems pick nobody keeps a
//! button per system, as before (the admin offers the subscriber a choice).

use crate::config::System;

/// Whether any card system of `system`'s provider picks its subscribers.
fn chosen_for_subscriber(all: &[&System], system: &System) -> bool {
    all.iter()
        .filter(|s| s.protocol == system.protocol)
        .any(|s| s.card().is_some_and(|c| c.merchant.selective()))
}

/// The systems that get a button on the page, in the config's order: for a provider whose
/// merchants are chosen for the subscriber, its first system only (it stands for all of
/// them); every system of any other provider.
pub fn buttons<'a>(all: &[&'a System]) -> Vec<&'a System> {
    let mut shown: Vec<&System> = Vec::new();
    for s in all {
        let stands_in =
            chosen_for_subscriber(all, s) && shown.iter().any(|shown| shown.protocol == s.protocol);
        if !stands_in {
            shown.push(s);
        }
    }
    shown
}

/// The system that takes the payment of the subscriber in `group` (`None`: the billing has
/// no groups) whose account reads `account`, when the button of `pressed` was pressed:
/// `pressed` itself when its provider's systems pick nobody; else the first of its
/// provider's systems that takes the subscriber, `None` when none does.
pub fn choose<'a>(
    all: &[&'a System],
    pressed: &'a System,
    group: Option<u32>,
    account: &str,
) -> Option<&'a System> {
    if !chosen_for_subscriber(all, pressed) {
        return Some(pressed);
    }
    all.iter()
        .copied()
        .filter(|s| s.protocol == pressed.protocol)
        .find(|s| s.card().is_some_and(|c| c.merchant.takes(group, account)))
}

/// The selective systems no subscriber can reach: after a system of the same provider that
/// takes everybody, in the config's order (the first that takes a subscriber is chosen).
/// Pairs of (the one that takes everybody, the one never chosen), for check-config.
pub fn shadowed<'a>(all: &[&'a System]) -> Vec<(&'a System, &'a System)> {
    let mut pairs = Vec::new();
    for (i, s) in all.iter().enumerate() {
        if !s.card().is_some_and(|c| c.merchant.selective()) {
            continue;
        }
        if let Some(before) = all[..i]
            .iter()
            .find(|o| o.protocol == s.protocol && o.card().is_some_and(|c| !c.merchant.selective()))
        {
            pairs.push((*before, *s));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(systems: &str) -> Config {
        load("abills", systems).unwrap()
    }

    fn load(billing: &str, systems: &str) -> Result<Config, String> {
        let dir = std::env::temp_dir().join(format!(
            "paysys-merchant-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let path = dir.join("etc/paysys.toml");
        std::fs::write(
            &path,
            format!(
                "[database]\nurl = \"mysql://u@127.0.0.1/db\"\nbilling = \"{billing}\"\n{systems}"
            ),
        )
        .unwrap();
        let c = Config::load(&path).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        c
    }

    fn liqpay(name: &str, id: u32, extra: &str) -> String {
        format!(
            "[[system]]\nname = \"{name}\"\nprotocol = \"liqpay\"\nabills_id = {id}\n\
             public_key = \"pk-{name}\"\nprivate_key = \"sk\"\naccount = [\"login\"]\n{extra}\n"
        )
    }

    fn names(systems: &[&System]) -> Vec<String> {
        systems.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn a_provider_whose_merchants_pick_gets_one_button_and_the_right_merchant() {
        let c = config(
            &(liqpay("lp_north", 50, "groups = [1, 2]")
                + &liqpay("lp_south", 51, "accounts = \"^s\"")
                + &liqpay("lp_main", 52, "")
                + "[[system]]\nname = \"mono\"\nprotocol = \"monobank\"\nabills_id = 60\n\
                   token = \"t\"\naccount = [\"login\"]\n"),
        );
        let all: Vec<&System> = c.systems.iter().collect();
        assert_eq!(names(&buttons(&all)), ["lp_north", "mono"]);
        let pressed = all[0];
        let chosen = |group, account| choose(&all, pressed, group, account).map(|s| &s.name);
        assert_eq!(chosen(Some(2), "south1").unwrap(), "lp_north");
        assert_eq!(chosen(Some(5), "south1").unwrap(), "lp_south");
        assert_eq!(chosen(Some(5), "west1").unwrap(), "lp_main");
        assert_eq!(chosen(None, "west1").unwrap(), "lp_main");
        // Pressing another of its systems' names (an old form) chooses the same way.
        assert_eq!(
            choose(&all, all[2], Some(1), "x").map(|s| &s.name).unwrap(),
            "lp_north"
        );
        assert!(shadowed(&all).is_empty());
    }

    #[test]
    fn without_a_merchant_for_everybody_some_subscribers_have_none() {
        let c = config(&(liqpay("a", 50, "groups = [1]") + &liqpay("b", 51, "groups = [2]")));
        let all: Vec<&System> = c.systems.iter().collect();
        assert!(choose(&all, all[0], Some(3), "x").is_none());
        assert!(choose(&all, all[0], None, "x").is_none());
        assert_eq!(choose(&all, all[1], Some(1), "x").unwrap().name, "a");
    }

    #[test]
    fn both_keys_must_hold() {
        let c = config(&liqpay("a", 50, "groups = [1]\naccounts = \"^\\\\d+$\""));
        let all: Vec<&System> = c.systems.iter().collect();
        assert!(choose(&all, all[0], Some(1), "123").is_some());
        assert!(choose(&all, all[0], Some(1), "abc").is_none());
        assert!(choose(&all, all[0], Some(2), "123").is_none());
    }

    #[test]
    fn systems_that_pick_nobody_keep_their_buttons() {
        let c = config(&(liqpay("a", 50, "") + &liqpay("b", 51, "")));
        let all: Vec<&System> = c.systems.iter().collect();
        assert_eq!(names(&buttons(&all)), ["a", "b"]);
        assert_eq!(choose(&all, all[1], Some(1), "x").unwrap().name, "b");
    }

    #[test]
    fn a_merchant_after_one_for_everybody_is_never_chosen() {
        let c = config(&(liqpay("all", 50, "") + &liqpay("north", 51, "groups = [1]")));
        let all: Vec<&System> = c.systems.iter().collect();
        let pairs = shadowed(&all);
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].0.name.as_str(), pairs[0].1.name.as_str()),
            ("all", "north")
        );
        assert_eq!(choose(&all, all[0], Some(1), "x").unwrap().name, "all");
    }

    #[test]
    fn the_config_refuses_what_the_page_could_not_do() {
        // NoDeny's groups are not read.
        let e = load(
            "nodeny",
            "[[system]]\nname = \"lp\"\nprotocol = \"liqpay\"\npublic_key = \"p\"\n\
             private_key = \"s\"\ngroups = [1]\n",
        )
        .unwrap_err();
        assert!(e.contains("groups are ABillS group ids"), "{e}");
        // One form, one account rule for a provider's merchants.
        let e = load(
            "abills",
            &(liqpay("a", 50, "groups = [1]")
                + &liqpay("b", 51, "").replace("[\"login\"]", "[\"uid\"]")),
        )
        .unwrap_err();
        assert!(e.contains("give them the same account"), "{e}");
        for (bad, why) in [
            ("groups = []", "empty list"),
            ("groups = [70000]", "not an ABillS group id"),
            ("groups = \"1\"", "list of ABillS group ids"),
            ("accounts = \"(\"", "not a regular expression"),
        ] {
            let e = load("abills", &liqpay("a", 50, bad)).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
