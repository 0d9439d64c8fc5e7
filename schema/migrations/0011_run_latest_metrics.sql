CREATE TABLE "run_latest_metrics" (
	"run_id" text NOT NULL,
	"key" text NOT NULL,
	"experiment_id" integer,
	"value" double precision NOT NULL,
	"step" integer DEFAULT 0 NOT NULL,
	"logged_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_latest_metrics_run_id_key_pk" PRIMARY KEY("run_id","key")
);
--> statement-breakpoint
ALTER TABLE "run_latest_metrics" ADD CONSTRAINT "run_latest_metrics_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
INSERT INTO "run_latest_metrics" ("run_id", "key", "experiment_id", "value", "step", "logged_at")
SELECT r."id", m."key", e."id", (m."value" #>> '{}')::float8, coalesce(s."step", 0), coalesce(s."logged_at", r."started_at")
FROM "runs" r
CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(r."metrics") = 'object' THEN r."metrics" ELSE '{}'::jsonb END) AS m("key", "value")
LEFT JOIN "experiments" e ON e."name" = r."experiment"
LEFT JOIN LATERAL (SELECT rm."step", rm."logged_at" FROM "run_metrics" rm WHERE rm."run_id" = r."id" AND rm."key" = m."key" ORDER BY rm."step" DESC LIMIT 1) s ON true
WHERE (m."value" #>> '{}') ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$' OR (m."value" #>> '{}') IN ('NaN', 'Infinity', '-Infinity');--> statement-breakpoint
CREATE INDEX "run_latest_metrics_experiment_key_value" ON "run_latest_metrics" USING btree ("experiment_id","key","value","run_id");
