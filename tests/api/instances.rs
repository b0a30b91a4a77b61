//! Several `hris-sync` processes on one PostgreSQL database. These tests need PostgreSQL
//! (`scripts/with-postgres cargo test`); without it they return at once, saying so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hris_sync::store::schema::{sync_runs, users};
use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::helpers::{postgres_url, BinaryServer, TestDatabase, POSTGRES_URL_VAR};

fn needs_postgres(test: &str) -> bool {
    if postgres_url().is_some() {
        return true;
    }
    eprintln!(
        "{test}: skipped, it needs PostgreSQL ({POSTGRES_URL_VAR}; see scripts/with-postgres)"
    );
    false
}

/// People `0..count` of an organization, all with the given last name.
fn people(organization: usize, count: usize, last_name: &str) -> Value {
    json!((0..count)
        .map(|i| json!({
            "external_id": format!("O{organization}-{i}"),
            "email": format!("o{organization}.{i}@example.com"),
            "first_name": "First",
            "last_name": last_name,
            "start_date": "2024-01-15",
            "manager_external_id": if i == 0 { Value::Null } else { json!(format!("O{organization}-{}", (i - 1) / 8)) },
            "teams": [format!("Team {}", i % 7)],
        }))
        .collect::<Vec<_>>())
}

struct Organization {
    id: String,
    token: String,
}

fn organizations(database_url: &str, count: usize) -> Vec<Organization> {
    let pool = hris_sync::store::connect(database_url, 1).expect("database");
    let mut conn = pool.get().expect("connection");
    (0..count)
        .map(|i| {
            let created =
                hris_sync::store::organizations::create(&mut conn, &format!("company {i}"))
                    .expect("organization");
            Organization {
                id: created.organization.id,
                token: created.admin_token,
            }
        })
        .collect()
}

fn push(client: &Client, base: &str, token: &str, users: &Value) -> String {
    let response = client
        .post(format!("{base}/v1/syncs"))
        .bearer_auth(token)
        .json(&json!({"source": "test", "mode": "incremental", "users": users}))
        .send()
        .expect("push sent");
    assert_eq!(response.status().as_u16(), 202);
    response.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn wait(client: &Client, base: &str, token: &str, id: &str, deadline: Instant) -> Value {
    loop {
        let run: Value = client
            .get(format!("{base}/v1/syncs/{id}"))
            .bearer_auth(token)
            .send()
            .expect("run read")
            .json()
            .unwrap();
        if !matches!(run["status"].as_str(), Some("pending" | "running")) {
            return run;
        }
        assert!(Instant::now() < deadline, "run did not finish: {run}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_instances_apply_interleaved_pushes_exactly_once_and_in_order_even_when_one_is_killed() {
    if !needs_postgres("two_instances_apply_interleaved_pushes…") {
        return;
    }
    let database = TestDatabase::new();
    let url = database.url().to_owned();
    let orgs = organizations(&url, 3);
    let alpha = BinaryServer::start_with_env(&url, &[("HRIS_SYNC_INSTANCE_ID", "alpha")]);
    let beta = BinaryServer::start_with_env(&url, &[("HRIS_SYNC_INSTANCE_ID", "beta")]);
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Each organization gets four pushes; push k has people 0..sizes[k], all named "vk", so
    // each one creates the new people and renames the others. The very first push is big,
    // so that alpha is still applying it when it is killed.
    let sizes = |org: usize| -> [usize; 4] {
        if org == 0 {
            [20_000, 20_010, 20_020, 20_030]
        } else {
            [30, 40, 50, 60]
        }
    };
    let mut runs: BTreeMap<(usize, usize), String> = BTreeMap::new();
    let mut sent = 0;
    let send = |base: &str, org: usize, k: usize, runs: &mut BTreeMap<(usize, usize), String>| {
        let users = people(org, sizes(org)[k], &format!("v{k}"));
        runs.insert((org, k), push(&client, base, &orgs[org].token, &users));
    };
    // First round, alternately to alpha and beta.
    for org in 0..3 {
        let base = if sent % 2 == 0 {
            &alpha.base
        } else {
            &beta.base
        };
        send(base, org, 0, &mut runs);
        sent += 1;
    }

    // Kill alpha while it applies organization 0's big first push.
    let big = runs[&(0, 0)].clone();
    let pool = hris_sync::store::connect(&url, 1).expect("database");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut conn = pool.get().unwrap();
        let (status, holder): (String, Option<String>) = sync_runs::table
            .find(&big)
            .select((sync_runs::status, sync_runs::claimed_by))
            .first(&mut *conn)
            .unwrap();
        if status == "running" {
            assert_eq!(
                holder.as_deref(),
                Some("alpha"),
                "pushed to alpha, claimed by it"
            );
            break;
        }
        assert_eq!(
            status, "pending",
            "the big run ended before alpha could be killed"
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    alpha.kill();

    // The other rounds, alternately to beta and a third instance started meanwhile.
    let gamma = BinaryServer::start_with_env(&url, &[("HRIS_SYNC_INSTANCE_ID", "gamma")]);
    for k in 1..4 {
        for org in 0..3 {
            let base = if sent % 2 == 0 {
                &gamma.base
            } else {
                &beta.base
            };
            send(base, org, k, &mut runs);
            sent += 1;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(240);
    let finished: BTreeMap<(usize, usize), Value> = runs
        .iter()
        .map(|(&(org, k), id)| {
            let base = if k % 2 == 0 { &beta.base } else { &gamma.base };
            (
                (org, k),
                wait(&client, base, &orgs[org].token, id, deadline),
            )
        })
        .collect();

    for org in 0..3 {
        let sizes = sizes(org);
        for k in 0..4 {
            let run = &finished[&(org, k)];
            assert_eq!(run["status"], "succeeded", "{run}");
            // Applied exactly once: a second application would find nothing to create.
            let (created, updated) = if k == 0 {
                (sizes[0], 0)
            } else {
                (sizes[k] - sizes[k - 1], sizes[k - 1])
            };
            assert_eq!(
                run["counts"]["created"], created,
                "org {org} push {k}: {run}"
            );
            assert_eq!(
                run["counts"]["updated"], updated,
                "org {org} push {k}: {run}"
            );
            if k > 0 {
                let previous = &finished[&(org, k - 1)];
                assert!(
                    previous["finished_at"].as_str() <= run["started_at"].as_str(),
                    "org {org}: push {k} started before push {} ended",
                    k - 1
                );
            }
        }
    }
    let taken_over = finished[&(0, 0)]["logs"].to_string();
    assert!(
        taken_over.contains("alpha") && taken_over.contains("took it over"),
        "{taken_over}"
    );

    // The directory is what one instance applying the pushes in order would have made.
    let mut conn = pool.get().unwrap();
    for (index, org) in orgs.iter().enumerate() {
        let names: Vec<(Option<String>, String)> = users::table
            .filter(users::organization_id.eq(&org.id))
            .select((users::external_id, users::last_name))
            .load(&mut *conn)
            .unwrap();
        assert_eq!(names.len(), sizes(index)[3], "org {index}");
        assert!(names.iter().all(|(_, name)| name == "v3"), "org {index}");
    }
}

#[test]
fn an_idempotency_key_sent_to_two_instances_at_once_makes_one_run() {
    if !needs_postgres("an_idempotency_key_sent_to_two_instances_at_once_makes_one_run") {
        return;
    }
    let database = TestDatabase::new();
    let url = database.url().to_owned();
    let orgs = organizations(&url, 1);
    let servers = [BinaryServer::start(&url), BinaryServer::start(&url)];
    let client = Client::new();
    let body = json!({"mode": "incremental", "users": people(0, 50, "Same")});
    for attempt in 0..5 {
        let key = format!("key-{attempt}");
        let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
            let requests: Vec<_> = (0..6)
                .map(|i| {
                    let (client, body, key, token) = (&client, &body, &key, &orgs[0].token);
                    let base = servers[i % 2].base.clone();
                    scope.spawn(move || {
                        let response = client
                            .post(format!("{base}/v1/syncs"))
                            .bearer_auth(token)
                            .header("Idempotency-Key", key)
                            .json(body)
                            .send()
                            .unwrap();
                        let status = response.status().as_u16();
                        let run: Value = response.json().unwrap();
                        (status, run["id"].as_str().unwrap_or_default().to_owned())
                    })
                })
                .collect();
            requests.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let created = answers.iter().filter(|(status, _)| *status == 202).count();
        assert_eq!(created, 1, "{answers:?}");
        assert!(
            answers
                .iter()
                .all(|(status, id)| matches!(status, 200 | 202) && *id == answers[0].1),
            "{answers:?}"
        );
    }
}
