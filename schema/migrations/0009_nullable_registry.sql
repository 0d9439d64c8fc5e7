ALTER TABLE "alias_events" ALTER COLUMN "to_version" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "model_versions" ALTER COLUMN "artifact_key" DROP NOT NULL;--> statement-breakpoint
UPDATE "model_versions" SET "artifact_key" = NULL WHERE "artifact_key" = '';
