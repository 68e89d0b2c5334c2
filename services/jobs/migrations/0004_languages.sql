-- Translations: each target language's own status, dub and error (domain/languages.py), as a
-- list of {language, status, output, error, completed_at}. NULL for other services, and for
-- translations recorded before per-language results (their languages follow the job's status).
ALTER TABLE jobs ADD COLUMN languages jsonb;
