-- 002: default plans, their limits, and default model prices.
--
-- Plans and limits are the seed values (requests and tokens per day and per
-- month, at the tenant level). Tokens are input + output (cached input is part
-- of input). Enterprise is not unlimited by default; set limits to unlimited
-- explicitly per tenant when a contract says so.
--
-- Prices are list prices in USD as published by the providers, converted to
-- pico-USD: a token price of $P per million tokens is P * 10^6 pUSD per token,
-- a unit price of $U is U * 10^12 pUSD. They are defaults to start from:
-- review them against your contracts and add rows with a later valid_from
-- (meterctl will manage this; the table is versioned, never edited in place).

INSERT INTO plans (id, name, price_cents) VALUES
    ('free', 'Free', 0),
    ('starter', 'Starter', 4900),
    ('pro', 'Pro', 14900),
    ('enterprise', 'Enterprise', 49900);

INSERT INTO plan_limits (plan_id, subject_type, metric, period, limit_value) VALUES
    ('free', 'tenant', 'requests', 'day', 50),
    ('free', 'tenant', 'tokens', 'day', 100000),
    ('free', 'tenant', 'requests', 'month', 500),
    ('free', 'tenant', 'tokens', 'month', 1000000),
    ('starter', 'tenant', 'requests', 'day', 500),
    ('starter', 'tenant', 'tokens', 'day', 1000000),
    ('starter', 'tenant', 'requests', 'month', 10000),
    ('starter', 'tenant', 'tokens', 'month', 20000000),
    ('pro', 'tenant', 'requests', 'day', 5000),
    ('pro', 'tenant', 'tokens', 'day', 10000000),
    ('pro', 'tenant', 'requests', 'month', 100000),
    ('pro', 'tenant', 'tokens', 'month', 200000000),
    ('enterprise', 'tenant', 'requests', 'day', 50000),
    ('enterprise', 'tenant', 'tokens', 'day', 100000000),
    ('enterprise', 'tenant', 'requests', 'month', 1000000),
    ('enterprise', 'tenant', 'tokens', 'month', 2000000000);

INSERT INTO prices (provider, model, valid_from, input_pusd, cached_input_pusd, output_pusd, note) VALUES
    ('openai', 'gpt-5', '2025-01-01T00:00:00Z', 1250000, 125000, 10000000, '$1.25 / $0.125 cached / $10.0 out per 1M tokens'),
    ('openai', 'gpt-5-mini', '2025-01-01T00:00:00Z', 250000, 25000, 2000000, '$0.25 / $0.025 cached / $2.0 out per 1M tokens'),
    ('openai', 'gpt-5-nano', '2025-01-01T00:00:00Z', 50000, 5000, 400000, '$0.05 / $0.005 cached / $0.4 out per 1M tokens'),
    ('openai', 'gpt-4.1', '2025-01-01T00:00:00Z', 2000000, 500000, 8000000, '$2.0 / $0.5 cached / $8.0 out per 1M tokens'),
    ('openai', 'gpt-4.1-mini', '2025-01-01T00:00:00Z', 400000, 100000, 1600000, '$0.4 / $0.1 cached / $1.6 out per 1M tokens'),
    ('openai', 'gpt-4.1-nano', '2025-01-01T00:00:00Z', 100000, 25000, 400000, '$0.1 / $0.025 cached / $0.4 out per 1M tokens'),
    ('openai', 'gpt-4o', '2025-01-01T00:00:00Z', 2500000, 1250000, 10000000, '$2.5 / $1.25 cached / $10.0 out per 1M tokens'),
    ('openai', 'gpt-4o-mini', '2025-01-01T00:00:00Z', 150000, 75000, 600000, '$0.15 / $0.075 cached / $0.6 out per 1M tokens'),
    ('openai', 'o3', '2025-01-01T00:00:00Z', 2000000, 500000, 8000000, '$2.0 / $0.5 cached / $8.0 out per 1M tokens'),
    ('openai', 'o4-mini', '2025-01-01T00:00:00Z', 1100000, 275000, 4400000, '$1.1 / $0.275 cached / $4.4 out per 1M tokens'),
    ('openai', 'o1', '2025-01-01T00:00:00Z', 15000000, 7500000, 60000000, '$15.0 / $7.5 cached / $60.0 out per 1M tokens'),
    ('openai', 'text-embedding-3-small', '2025-01-01T00:00:00Z', 20000, 20000, 0, '$0.02 / $0.02 cached / $0 out per 1M tokens'),
    ('openai', 'text-embedding-3-large', '2025-01-01T00:00:00Z', 130000, 130000, 0, '$0.13 / $0.13 cached / $0 out per 1M tokens'),
    ('anthropic', 'claude-opus-4-1', '2025-01-01T00:00:00Z', 15000000, 1500000, 75000000, '$15.0 / $1.5 cached / $75.0 out per 1M tokens'),
    ('anthropic', 'claude-opus-4', '2025-01-01T00:00:00Z', 15000000, 1500000, 75000000, '$15.0 / $1.5 cached / $75.0 out per 1M tokens'),
    ('anthropic', 'claude-sonnet-4-5', '2025-01-01T00:00:00Z', 3000000, 300000, 15000000, '$3.0 / $0.3 cached / $15.0 out per 1M tokens'),
    ('anthropic', 'claude-sonnet-4', '2025-01-01T00:00:00Z', 3000000, 300000, 15000000, '$3.0 / $0.3 cached / $15.0 out per 1M tokens'),
    ('anthropic', 'claude-3-7-sonnet', '2025-01-01T00:00:00Z', 3000000, 300000, 15000000, '$3.0 / $0.3 cached / $15.0 out per 1M tokens'),
    ('anthropic', 'claude-haiku-4-5', '2025-01-01T00:00:00Z', 1000000, 100000, 5000000, '$1.0 / $0.1 cached / $5.0 out per 1M tokens'),
    ('anthropic', 'claude-3-5-haiku', '2025-01-01T00:00:00Z', 800000, 80000, 4000000, '$0.8 / $0.08 cached / $4.0 out per 1M tokens'),
    ('gemini', 'gemini-2.5-pro', '2025-01-01T00:00:00Z', 1250000, 310000, 10000000, '$1.25 / $0.31 cached / $10.0 out per 1M tokens'),
    ('gemini', 'gemini-2.5-flash', '2025-01-01T00:00:00Z', 300000, 75000, 2500000, '$0.3 / $0.075 cached / $2.5 out per 1M tokens'),
    ('gemini', 'gemini-2.5-flash-lite', '2025-01-01T00:00:00Z', 100000, 25000, 400000, '$0.1 / $0.025 cached / $0.4 out per 1M tokens'),
    ('gemini', 'gemini-2.0-flash', '2025-01-01T00:00:00Z', 100000, 25000, 400000, '$0.1 / $0.025 cached / $0.4 out per 1M tokens'),
    ('gemini', 'gemini-2.0-flash-lite', '2025-01-01T00:00:00Z', 75000, 18750, 300000, '$0.075 / $0.01875 cached / $0.3 out per 1M tokens'),
    ('gemini', 'text-embedding-004', '2025-01-01T00:00:00Z', 0, 0, 0, '$0 / $0 cached / $0 out per 1M tokens');

INSERT INTO prices (provider, model, valid_from, unit_pusd, note) VALUES
    ('openai', 'dall-e-3', '2025-01-01T00:00:00Z', '{"images": 40000000000}', '$0.04 per image'),
    ('openai', 'sora-2', '2025-01-01T00:00:00Z', '{"video_seconds": 100000000000}', '$0.1 per video_second'),
    ('openai', 'sora-2-pro', '2025-01-01T00:00:00Z', '{"video_seconds": 300000000000}', '$0.3 per video_second'),
    ('gemini', 'imagen-4', '2025-01-01T00:00:00Z', '{"images": 40000000000}', '$0.04 per image'),
    ('gemini', 'imagen-3', '2025-01-01T00:00:00Z', '{"images": 30000000000}', '$0.03 per image'),
    ('gemini', 'veo-3', '2025-01-01T00:00:00Z', '{"video_seconds": 400000000000}', '$0.4 per video_second'),
    ('gemini', 'veo-3-fast', '2025-01-01T00:00:00Z', '{"video_seconds": 150000000000}', '$0.15 per video_second'),
    ('gemini', 'veo-2', '2025-01-01T00:00:00Z', '{"video_seconds": 350000000000}', '$0.35 per video_second');
