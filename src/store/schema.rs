//! One schema for both backends: only portable column types (text, integer, boolean, binary).
//! Kept by hand in step with `migrations/*/`; the API tests run every query against the
//! migrated SQLite schema, and a test checks that both backends have the same migrations.

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        settings -> Text,
        created_at -> Text,
        settings_version -> Integer,
        last_claimed_at -> Nullable<Text>,
    }
}

diesel::table! {
    settings_versions (organization_id, version) {
        organization_id -> Text,
        version -> Integer,
        document -> Text,
        changed_by -> Text,
        changed_at -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        scope -> Text,
        token_hash -> Text,
        created_at -> Text,
        last_used_at -> Nullable<Text>,
        revoked_at -> Nullable<Text>,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> Text,
        organization_id -> Text,
        status -> Text,
        mode -> Text,
        source -> Text,
        dry_run -> Bool,
        content_type -> Text,
        created_at -> Text,
        started_at -> Nullable<Text>,
        finished_at -> Nullable<Text>,
        attempts -> Integer,
        progress_processed -> Integer,
        progress_total -> Integer,
        summary -> Nullable<Text>,
        logs -> Text,
        retry_of -> Nullable<Text>,
        settings_version -> Nullable<Integer>,
        approval_reasons -> Nullable<Text>,
        awaiting_since -> Nullable<Text>,
        approval_expires_at -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decision_reason -> Nullable<Text>,
        decided_at -> Nullable<Text>,
        claimed_by -> Nullable<Text>,
        lease_expires_at -> Nullable<Text>,
        not_before -> Nullable<Text>,
        transient_failures -> Integer,
    }
}

diesel::table! {
    sync_payload_chunks (run_id, seq) {
        run_id -> Text,
        seq -> Integer,
        body_lz4 -> Binary,
    }
}

diesel::table! {
    idempotency_keys (organization_id, idempotency_key) {
        organization_id -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        run_id -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        organization_id -> Text,
        external_id -> Nullable<Text>,
        email -> Text,
        email_key -> Text,
        username -> Nullable<Text>,
        first_name -> Text,
        last_name -> Text,
        state -> Text,
        role -> Text,
        approval_process -> Text,
        employment_status -> Text,
        manager_id -> Nullable<Text>,
        teams -> Text,
        start_date -> Nullable<Text>,
        end_date -> Nullable<Text>,
        date_of_birth -> Nullable<Text>,
        gender -> Nullable<Text>,
        phone -> Nullable<Text>,
        custom_fields -> Text,
        upcoming_trips -> Integer,
        source_hash -> Nullable<Text>,
        search_key -> Text,
        created_at -> Text,
        updated_at -> Text,
        archived_at -> Nullable<Text>,
        groups -> Text,
        pending_archive_since -> Nullable<Text>,
        pending_archive_reason -> Nullable<Text>,
        text_stamp -> Nullable<Text>,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        name_key -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    sync_events (run_id, seq) {
        run_id -> Text,
        seq -> Integer,
        kind -> Text,
        entity -> Text,
        action -> Nullable<Text>,
        code -> Nullable<Text>,
        severity -> Nullable<Text>,
        field -> Nullable<Text>,
        message -> Nullable<Text>,
        changes -> Nullable<Text>,
        source_row -> Nullable<Integer>,
        external_id -> Nullable<Text>,
        email -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        user_id -> Nullable<Text>,
        team -> Nullable<Text>,
        search_key -> Text,
    }
}

diesel::joinable!(api_tokens -> organizations (organization_id));
diesel::joinable!(sync_runs -> organizations (organization_id));
diesel::joinable!(settings_versions -> organizations (organization_id));
diesel::joinable!(sync_payload_chunks -> sync_runs (run_id));
diesel::joinable!(sync_events -> sync_runs (run_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    settings_versions,
    api_tokens,
    sync_runs,
    sync_payload_chunks,
    idempotency_keys,
    users,
    teams,
    sync_events,
);
