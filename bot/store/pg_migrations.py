"""The PostgreSQL schema, as numbered migrations. Append new ones; never edit one that shipped.

The tables and columns are the SQLite ones (`migrations.py`) in PostgreSQL's types: times are
`timestamptz`, documents `json` (kept verbatim, so argument order survives), flags `boolean`.
Version 2 adds what only several replicas need: leases on expiry and outbox work.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

_SCHEMA = """
CREATE TABLE approvals (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    tool_call_id text NOT NULL UNIQUE,
    fingerprint text NOT NULL,
    status text NOT NULL,
    tool_name text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    escalations integer NOT NULL DEFAULT 0,
    slack_channel text,
    slack_ts text,
    slack_permalink text,
    request json NOT NULL,
    current_args json,
    edited_by text
);
CREATE INDEX approvals_status ON approvals (status, seq);
CREATE INDEX approvals_expiry ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_card ON approvals (slack_channel, slack_ts);

CREATE TABLE decisions (
    approval_id text PRIMARY KEY REFERENCES approvals (id),
    approved boolean NOT NULL,
    action text NOT NULL,
    approved_args json,
    decided_by text NOT NULL,
    decided_by_name text,
    approvers json NOT NULL,
    comment text,
    decided_at timestamptz NOT NULL
);

CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    approval_id text NOT NULL,
    kind text NOT NULL,
    status text,
    actor text,
    at timestamptz NOT NULL,
    args_before json,
    args_after json,
    detail json NOT NULL DEFAULT '{}',
    record json
);
CREATE INDEX events_at ON events (at);

CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    approval_id text NOT NULL,
    event_id bigint NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL,
    last_error text
);
CREATE INDEX outbox_due ON outbox (topic, due_at);
-- an approval's items are delivered in order: a claim looks for an older sibling here
CREATE INDEX outbox_order ON outbox (topic, approval_id, id);

-- Append-only: the audit trail cannot be rewritten through SQL either.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END
$$;
CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

CREATE TABLE run_threads (
    channel text NOT NULL,
    run_id text NOT NULL,
    ts text NOT NULL,
    PRIMARY KEY (channel, run_id)
);

CREATE TABLE votes (
    approval_id text NOT NULL REFERENCES approvals (id),
    "user" text NOT NULL,
    at timestamptz NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (approval_id, "user")
);

CREATE TABLE card_copies (
    approval_id text NOT NULL REFERENCES approvals (id),
    channel text NOT NULL,
    ts text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (approval_id, channel)
);
"""

_LEASES = """
-- A replica that takes an overdue approval holds it until then; the others skip it.
ALTER TABLE approvals ADD COLUMN expiry_claimed_until timestamptz;
-- The replica (store origin) working on an outbox item; `due_at` is then its lease's end.
ALTER TABLE outbox ADD COLUMN claimed_by text;
CREATE INDEX outbox_claimed ON outbox (claimed_by) WHERE claimed_by IS NOT NULL;
"""

_EDITED_AT = """
-- When the arguments were last edited: a vote typed in the thread before then is stale.
ALTER TABLE approvals ADD COLUMN edited_at timestamptz;
"""

_HEALTH = """
-- One row `/healthz` rewrites: a store that can read but not write is not healthy.
CREATE TABLE health (id integer PRIMARY KEY CHECK (id = 1), checked_at timestamptz);
INSERT INTO health VALUES (1, NULL);
"""

_SLACK_DELIVERY = """
-- Why Slack refused a card for good, and where a post went before its ts was known (so a
-- retry looks for it there before posting again).
ALTER TABLE approvals ADD COLUMN slack_error text;
ALTER TABLE approvals ADD COLUMN slack_posting text;
"""

_SLACK_SHARED = """
-- Slack events acted on (by event id): a redelivery, to this replica or another, is not acted
-- on again. Rows older than a day are pruned as new ones come.
CREATE TABLE slack_deliveries (id text PRIMARY KEY, seen_at timestamptz NOT NULL);
CREATE INDEX slack_deliveries_seen ON slack_deliveries (seen_at);
-- Slack's rate limits are per workspace (per channel for posts), not per replica: each key
-- (a method, a channel) keeps when its next call is due at the steady rate, in epoch seconds.
CREATE TABLE slack_turns (key text PRIMARY KEY, due double precision NOT NULL);
"""

_GRANTS = """
-- Standing approvals (`bot.grants`): what each approver proposed with "Approve & allow…"
-- while the approval waits for its votes, and the grants its decision made. Every replica
-- reads revocation and expiry here at each match, so they apply at once everywhere.
CREATE TABLE grant_proposals (
    approval_id text NOT NULL REFERENCES approvals (id),
    "user" text NOT NULL,
    name text,
    seconds integer NOT NULL,
    keys json NOT NULL,
    version text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (approval_id, "user")
);
CREATE TABLE grants (
    id text PRIMARY KEY,
    approval_id text NOT NULL UNIQUE REFERENCES approvals (id),
    tool_name text NOT NULL,
    agent text NOT NULL,
    channel text NOT NULL,
    rule text NOT NULL,
    keys json NOT NULL,
    kept json NOT NULL,
    seconds integer NOT NULL,
    granted_by json NOT NULL,
    names json NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_by text,
    revoked_at timestamptz,
    uses integer NOT NULL DEFAULT 0,
    used_at timestamptz
);
CREATE INDEX grants_match ON grants (tool_name, agent, expires_at) WHERE revoked_at IS NULL;
"""

_BATCHES = """
-- Batches (`bot.batches`): the batch key of each approval (its batchId, else its runId),
-- filled in for the approvals pending at the upgrade; the summary message posted in each
-- batch's thread; and the drawings whose buttons decide a batch ("Approve all N").
ALTER TABLE approvals ADD COLUMN batch_key text;
UPDATE approvals SET batch_key = nullif(coalesce(request->>'batchId',
    request->'requester'->>'runId'), '') WHERE status = 'pending';
CREATE INDEX approvals_batch ON approvals (batch_key, seq) WHERE batch_key IS NOT NULL;
CREATE TABLE batch_summaries (
    channel text NOT NULL,
    batch_key text NOT NULL,
    summary_channel text NOT NULL,
    ts text NOT NULL,
    PRIMARY KEY (channel, batch_key)
);
CREATE TABLE batch_views (
    id text PRIMARY KEY,
    channel text NOT NULL,
    batch_key text NOT NULL,
    items json NOT NULL,
    drawn_at timestamptz NOT NULL
);
CREATE INDEX batch_views_drawn ON batch_views (drawn_at);
"""

# The items a replica holds, by id: a claim reads those after its last item (one claim follows
# every commit), which by `claimed_by` alone meant reading all it holds.
_HELD = """
CREATE INDEX outbox_held ON outbox (claimed_by, id) WHERE claimed_by IS NOT NULL;
DROP INDEX outbox_claimed;
"""

# Each replica's heartbeat: it keeps the outbox items it claimed while its row is alive, and
# renews that one row, not the lease (`due_at`) of each item it holds: with thousands of cards
# queued behind Slack's pace in flight, each renewal rewrote every one of them.
_HEARTBEATS = """
CREATE TABLE replicas (origin text PRIMARY KEY, alive_until timestamptz NOT NULL);
"""

#: Numbered migrations; `migrations` records which ran. Append, never edit.
MIGRATIONS: list[str] = [
    _SCHEMA,
    _LEASES,
    _EDITED_AT,
    _HEALTH,
    _SLACK_DELIVERY,
    _SLACK_SHARED,
    _GRANTS,
    _BATCHES,
    _HELD,
    _HEARTBEATS,
]
