-- The read model shows a translation's per-language results (contracts.jobs.LanguageResult: one
-- {language, status, output, error, completed_at} per target language) as the jobs service last
-- reported them. NULL for other services, and until the jobs service has reported (the public
-- object then derives them from the job: contracts.jobs.languages_of).
ALTER TABLE jobs ADD COLUMN languages jsonb;
