DROP TABLE sync_runs;
DROP TABLE api_tokens;
DROP TABLE organizations;
