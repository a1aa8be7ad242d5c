-- The web app's tables as SPEC §6 describes them (quoted camelCase). In
-- production they already exist; every statement here is a no-op then.
CREATE TABLE IF NOT EXISTS "Accounts" (
    id UUID PRIMARY KEY,
    "timeZone" VARCHAR(255),
    name VARCHAR(255),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS "Segments" (
    id UUID PRIMARY KEY,
    "accountId" UUID NOT NULL REFERENCES "Accounts" (id) ON DELETE CASCADE,
    name VARCHAR(200) NOT NULL,
    description TEXT,
    "isCustom" BOOLEAN DEFAULT FALSE,
    "ruleGroups" TEXT,
    status BOOLEAN DEFAULT TRUE,
    "queryStatus" VARCHAR(200) DEFAULT 'in-progress',
    query TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Columns the functions rely on, added later in the web app's history.
ALTER TABLE "Segments" ADD COLUMN IF NOT EXISTS "isBlocked" BOOLEAN DEFAULT FALSE;
ALTER TABLE "Segments" ADD COLUMN IF NOT EXISTS "totalBytesBilled" BIGINT;
ALTER TABLE "Segments" ADD COLUMN IF NOT EXISTS "buildAt" TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS "Segments_accountId" ON "Segments" ("accountId");

CREATE TABLE IF NOT EXISTS "SegmentReport" (
    id UUID PRIMARY KEY,
    "accountId" UUID REFERENCES "Accounts" (id) ON DELETE CASCADE,
    "segmentId" UUID REFERENCES "Segments" (id) ON DELETE CASCADE,
    "reportName" VARCHAR(200),
    "userId" UUID,
    "reportType" VARCHAR(200),
    object VARCHAR(200),
    apply BOOLEAN DEFAULT TRUE,
    "applyChart" BOOLEAN,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
