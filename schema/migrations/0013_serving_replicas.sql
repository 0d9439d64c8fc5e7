CREATE TABLE "serving_replicas" (
	"id" text PRIMARY KEY NOT NULL,
	"alias" text NOT NULL,
	"url" text,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"models" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"routes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"failed" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"beat_ms" integer NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "serving_replicas_alias" ON "serving_replicas" USING btree ("alias","last_seen_at");
