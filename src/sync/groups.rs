//! Group rules (`group_rules`): every rule whose condition a user meets gives the user its
//! group — all matching rules apply, not only the first — in the order the rules are listed.
//! The planner writes the groups on the user (GROUP_ASSIGNED when they change) and warns
//! with NO_GROUP_MATCH about a user no rule matches.

use serde_json::Value;

use crate::catalogue::IssueCode;
use crate::domain::GroupRule;
use crate::sync::candidate::Issue;
use crate::sync::condition::holds;

/// The groups of a user whose field values `values` gives: one per matching rule, in rule
/// order, each group once (names compared without regard to case).
pub fn matching_groups(rules: &[GroupRule], values: impl Fn(&str) -> Vec<Value>) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for rule in rules {
        let group = rule.group.trim();
        if group.is_empty()
            || groups
                .iter()
                .any(|g| g.to_lowercase() == group.to_lowercase())
        {
            continue;
        }
        if holds(&rule.when, &values) {
            groups.push(group.to_owned());
        }
    }
    groups
}

pub fn no_group_match(rules: usize) -> Issue {
    Issue::new(
        IssueCode::NO_GROUP_MATCH,
        "groups",
        format!("None of the {rules} group rule(s) matches the user: the user has no group."),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(value: Value) -> Vec<GroupRule> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn every_matching_rule_gives_its_group_in_rule_order_once() {
        let rules = rules(json!([
            {"group": "Everyone in Sales", "when": {"field": "teams", "equals": "Sales"}},
            {"group": "Sales EMEA", "when": {"field": "custom.region", "in": ["EMEA", "APAC"]}},
            {"group": "Nobody", "when": {"field": "teams", "equals": "Legal"}},
            {"group": "sales emea", "when": {"field": "teams", "equals": "Sales"}},
        ]));
        let values = |field: &str| match field {
            "teams" => vec![json!("Sales"), json!("Ops")],
            "custom.region" => vec![json!("emea")],
            _ => Vec::new(),
        };
        assert_eq!(
            matching_groups(&rules, values),
            ["Everyone in Sales", "Sales EMEA"]
        );
        assert!(matching_groups(&rules, |_| Vec::new()).is_empty());
    }
}
