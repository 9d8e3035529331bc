-- The naive design the seed documents sketch (seed 000's increment_usage):
-- one round trip per event that reads the tenant's plan, checks the daily
-- limits and increments the daily counter, committed on its own. The bench
-- runs it on the same stream as meterd, for comparison only.
CREATE TABLE naive_plans (
    id text PRIMARY KEY,
    requests_per_day int NOT NULL,
    tokens_per_day bigint NOT NULL
);
CREATE TABLE naive_tenants (
    id text PRIMARY KEY,
    plan_id text NOT NULL REFERENCES naive_plans(id),
    suspended boolean NOT NULL DEFAULT false
);
CREATE TABLE naive_usage (
    tenant_id text NOT NULL,
    day date NOT NULL,
    requests int NOT NULL DEFAULT 0,
    tokens_in bigint NOT NULL DEFAULT 0,
    tokens_out bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);
INSERT INTO naive_plans VALUES ('free', 50, 100000), ('starter', 500, 1000000),
    ('pro', 5000, 10000000), ('enterprise', 50000, 100000000);

CREATE FUNCTION naive_increment_usage(p_tenant text, p_requests int, p_in bigint, p_out bigint,
                                      OUT allowed boolean, OUT requests_remaining int)
LANGUAGE plpgsql AS $$
DECLARE
    v_plan naive_plans;
    v_susp boolean;
    v_used int;
    v_tok bigint;
BEGIN
    SELECT p.*, t.suspended INTO v_plan.id, v_plan.requests_per_day, v_plan.tokens_per_day, v_susp
      FROM naive_tenants t JOIN naive_plans p ON p.id = t.plan_id WHERE t.id = p_tenant;
    IF NOT FOUND THEN
        INSERT INTO naive_tenants VALUES (p_tenant, 'free') ON CONFLICT DO NOTHING;
        SELECT * INTO v_plan FROM naive_plans WHERE id = 'free';
        v_susp := false;
    END IF;
    IF v_susp THEN
        allowed := false; requests_remaining := 0; RETURN;
    END IF;
    SELECT requests, tokens_in + tokens_out INTO v_used, v_tok
      FROM naive_usage WHERE tenant_id = p_tenant AND day = current_date;
    INSERT INTO naive_usage AS u VALUES (p_tenant, current_date, p_requests, p_in, p_out)
    ON CONFLICT (tenant_id, day) DO UPDATE
       SET requests = u.requests + p_requests, tokens_in = u.tokens_in + p_in,
           tokens_out = u.tokens_out + p_out;
    allowed := coalesce(v_used, 0) + p_requests <= v_plan.requests_per_day
               AND coalesce(v_tok, 0) + p_in + p_out <= v_plan.tokens_per_day;
    requests_remaining := greatest(v_plan.requests_per_day - coalesce(v_used, 0) - p_requests, 0);
END $$;
