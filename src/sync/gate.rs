//! The approval gate: whether a planned run may apply on its own or must wait for an
//! administrator, and why.
//!
//! A run's plan is compared with the organization's `approval` settings: under `always` every
//! run waits; under `threshold` a run waits when it would archive, create or update more
//! than a limit allows (percentages are of the active users before the run; a plan exactly
//! at a limit passes). Dry runs never wait, but report the reasons a real run would have.

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use crate::domain::{ApprovalMode, ApprovalSettings, RunCounts};

/// Which rule made (or would make) a run wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalLimit {
    /// `approval.mode` is `always`.
    ModeAlways,
    MaxArchivePercent,
    MaxArchiveCount,
    MaxCreateCount,
    MaxUpdatePercent,
}

/// One limit a run's plan crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalReason {
    pub limit: ApprovalLimit,
    /// The planned figure: a count, or a percentage of the active users (one decimal).
    /// `null` for `mode_always`.
    #[serde(serialize_with = "number")]
    #[schema(required = true, example = 30)]
    pub planned: Option<f64>,
    /// The limit of the settings; `null` for `mode_always`.
    #[serde(serialize_with = "number")]
    #[schema(required = true, example = 10)]
    pub limit_value: Option<f64>,
    #[schema(
        example = "The run would archive 30 of 100 active users (30%), over the limit of 10% (approval.max_archive_percent)."
    )]
    pub message: String,
}

/// The figures of a plan the limits are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedChanges {
    /// Users the run archives, or starts a grace period for (`pending_archive` because they are
    /// missing from a full sync): both are offboardings the accidental-deletion limits guard.
    pub archived: u32,
    pub created: u32,
    pub updated: u32,
    /// Active users of the organization before the run.
    pub active_before: usize,
}

impl PlannedChanges {
    pub fn new(counts: &RunCounts, active_before: usize) -> PlannedChanges {
        PlannedChanges {
            archived: counts.archived + counts.pending_archive,
            created: counts.created,
            updated: counts.updated,
            active_before,
        }
    }

    /// `part` as a percentage of the active users, to one decimal; any change of an empty
    /// organization is 100 %.
    fn percent(&self, part: u32) -> f64 {
        if self.active_before == 0 {
            return if part == 0 { 0.0 } else { 100.0 };
        }
        let exact = f64::from(part) * 100.0 / self.active_before as f64;
        (exact * 10.0).round() / 10.0
    }
}

/// Whether the gate must see the plan before deciding (only `threshold` mode needs figures).
pub fn needs_figures(approval: &ApprovalSettings) -> bool {
    approval.mode == ApprovalMode::Threshold
}

/// Every reason the plan must wait for approval under `approval`; empty when it may apply.
pub fn reasons(approval: &ApprovalSettings, planned: &PlannedChanges) -> Vec<ApprovalReason> {
    match approval.mode {
        ApprovalMode::Never => Vec::new(),
        ApprovalMode::Always => vec![ApprovalReason {
            limit: ApprovalLimit::ModeAlways,
            planned: None,
            limit_value: None,
            message: "Every run waits for an administrator's approval (approval.mode is always)."
                .to_owned(),
        }],
        ApprovalMode::Threshold => threshold_reasons(approval, planned),
    }
}

fn threshold_reasons(approval: &ApprovalSettings, planned: &PlannedChanges) -> Vec<ApprovalReason> {
    let active = planned.active_before;
    let mut reasons = Vec::new();
    if let Some(limit) = approval.max_archive_percent {
        let percent = planned.percent(planned.archived);
        if percent > limit {
            reasons.push(ApprovalReason {
                limit: ApprovalLimit::MaxArchivePercent,
                planned: Some(percent),
                limit_value: Some(limit),
                message: format!(
                    "The run would archive {} of {active} active users ({percent}%), over the limit of {limit}% (approval.max_archive_percent).",
                    planned.archived
                ),
            });
        }
    }
    if let Some(limit) = approval.max_archive_count {
        if planned.archived > limit {
            reasons.push(ApprovalReason {
                limit: ApprovalLimit::MaxArchiveCount,
                planned: Some(f64::from(planned.archived)),
                limit_value: Some(f64::from(limit)),
                message: format!(
                    "The run would archive {} users, over the limit of {limit} (approval.max_archive_count).",
                    planned.archived
                ),
            });
        }
    }
    if let Some(limit) = approval.max_create_count {
        if planned.created > limit {
            reasons.push(ApprovalReason {
                limit: ApprovalLimit::MaxCreateCount,
                planned: Some(f64::from(planned.created)),
                limit_value: Some(f64::from(limit)),
                message: format!(
                    "The run would create {} users, over the limit of {limit} (approval.max_create_count).",
                    planned.created
                ),
            });
        }
    }
    if let Some(limit) = approval.max_update_percent {
        let percent = planned.percent(planned.updated);
        if percent > limit {
            reasons.push(ApprovalReason {
                limit: ApprovalLimit::MaxUpdatePercent,
                planned: Some(percent),
                limit_value: Some(limit),
                message: format!(
                    "The run would update {} of {active} active users ({percent}%), over the limit of {limit}% (approval.max_update_percent).",
                    planned.updated
                ),
            });
        }
    }
    reasons
}

/// 30.0 is written `30`, 12.5 `12.5`.
fn number<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => serializer.serialize_i64(*v as i64),
        Some(v) => serializer.serialize_f64(*v),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(configure: impl FnOnce(&mut ApprovalSettings)) -> ApprovalSettings {
        let mut approval = ApprovalSettings {
            mode: ApprovalMode::Threshold,
            ..ApprovalSettings::default()
        };
        configure(&mut approval);
        approval
    }

    fn plan(archived: u32, created: u32, updated: u32, active_before: usize) -> PlannedChanges {
        PlannedChanges {
            archived,
            created,
            updated,
            active_before,
        }
    }

    fn limits(approval: &ApprovalSettings, planned: PlannedChanges) -> Vec<ApprovalLimit> {
        reasons(approval, &planned)
            .into_iter()
            .map(|r| r.limit)
            .collect()
    }

    #[test]
    fn archive_percent_waits_only_above_the_limit() {
        let approval = threshold(|a| a.max_archive_percent = Some(10.0));
        assert!(limits(&approval, plan(9, 0, 0, 100)).is_empty(), "under");
        assert!(limits(&approval, plan(10, 0, 0, 100)).is_empty(), "at");
        assert_eq!(
            limits(&approval, plan(11, 0, 0, 100)),
            [ApprovalLimit::MaxArchivePercent],
            "over"
        );
        let reason = &reasons(&approval, &plan(30, 0, 0, 100))[0];
        assert_eq!(reason.planned, Some(30.0));
        assert_eq!(reason.limit_value, Some(10.0));
        assert!(reason.message.contains("30 of 100"), "{}", reason.message);
    }

    #[test]
    fn archive_count_create_count_and_update_percent_wait_only_above_their_limits() {
        let approval = threshold(|a| {
            a.max_archive_count = Some(5);
            a.max_create_count = Some(20);
            a.max_update_percent = Some(50.0);
        });
        assert!(
            limits(&approval, plan(5, 20, 50, 100)).is_empty(),
            "at every limit"
        );
        assert!(limits(&approval, plan(4, 19, 49, 100)).is_empty(), "under");
        assert_eq!(
            limits(&approval, plan(6, 21, 51, 100)),
            [
                ApprovalLimit::MaxArchiveCount,
                ApprovalLimit::MaxCreateCount,
                ApprovalLimit::MaxUpdatePercent
            ],
            "over every limit"
        );
    }

    #[test]
    fn percentages_are_of_the_active_users_before_the_run_to_one_decimal() {
        let approval = threshold(|a| a.max_archive_percent = Some(33.3));
        assert!(
            limits(&approval, plan(1, 0, 0, 3)).is_empty(),
            "33.3% is at the limit"
        );
        let approval = threshold(|a| a.max_archive_percent = Some(33.2));
        assert_eq!(reasons(&approval, &plan(1, 0, 0, 3))[0].planned, Some(33.3));
    }

    #[test]
    fn changes_to_an_empty_organization_are_a_hundred_percent() {
        let approval = threshold(|a| a.max_update_percent = Some(99.0));
        assert!(limits(&approval, plan(0, 50, 0, 0)).is_empty());
        assert_eq!(
            limits(&approval, plan(0, 0, 1, 0)),
            [ApprovalLimit::MaxUpdatePercent]
        );
    }

    #[test]
    fn never_lets_everything_through_and_always_stops_everything() {
        let never = ApprovalSettings {
            max_archive_count: Some(0),
            ..ApprovalSettings::default()
        };
        assert!(limits(&never, plan(100, 100, 100, 1)).is_empty());
        let always = ApprovalSettings {
            mode: ApprovalMode::Always,
            ..ApprovalSettings::default()
        };
        assert_eq!(
            limits(&always, plan(0, 0, 0, 10)),
            [ApprovalLimit::ModeAlways]
        );
        assert!(!needs_figures(&always) && needs_figures(&threshold(|_| {})));
    }

    #[test]
    fn a_null_limit_is_no_limit() {
        let approval = threshold(|_| {});
        assert!(limits(&approval, plan(1000, 1000, 1000, 1)).is_empty());
    }

    #[test]
    fn reasons_serialize_whole_figures_as_integers() {
        let approval = threshold(|a| a.max_archive_percent = Some(10.0));
        let json = serde_json::to_value(&reasons(&approval, &plan(30, 0, 0, 100))[0]).unwrap();
        assert_eq!(json["planned"], serde_json::json!(30));
        assert_eq!(json["limit_value"], serde_json::json!(10));
        assert_eq!(json["limit"], "max_archive_percent");
    }
}
