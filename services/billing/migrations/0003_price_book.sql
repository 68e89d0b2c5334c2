-- The price book as versioned data. A new price is a new version (a new migration inserting
-- it); a version once written never changes, so every reservation's `price_version` keeps
-- meaning what it meant. The version in force is the highest one whose effective_at has come.
CREATE TABLE price_books (
    version       integer PRIMARY KEY CHECK (version > 0),
    effective_at  timestamptz NOT NULL,
    rounding      text[]      NOT NULL
);

CREATE TABLE prices (
    version      integer NOT NULL REFERENCES price_books (version),
    service      text    NOT NULL
                 CHECK (service IN ('music', 'translations', 'family_videos', 'avatars')),
    item         text    NOT NULL,
    unit         text    NOT NULL
                 CHECK (unit IN ('second', 'started_minute_per_language', 'video')),
    -- Never zero: a job with no price is refused, not given away.
    credits      integer NOT NULL CHECK (credits > 0),
    description  text    NOT NULL,
    PRIMARY KEY (version, item)
);

CREATE TABLE top_up_bonuses (
    version        integer NOT NULL REFERENCES price_books (version),
    min_usd        integer NOT NULL CHECK (min_usd > 0),
    bonus_percent  integer NOT NULL CHECK (bonus_percent > 0 AND bonus_percent <= 100),
    PRIMARY KEY (version, min_usd)
);

CREATE TRIGGER price_books_immutable BEFORE UPDATE OR DELETE ON price_books
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER prices_immutable BEFORE UPDATE OR DELETE ON prices
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER top_up_bonuses_immutable BEFORE UPDATE OR DELETE ON top_up_bonuses
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

INSERT INTO price_books (version, effective_at, rounding) VALUES (1, '2026-01-01T00:00:00Z', ARRAY[
    'Per-second prices charge every started second: a duration is rounded up to a whole second.',
    'Translations charge every started minute of the video (rounded up, at least one minute), for each target language.',
    'The voice-cloning surcharge is charged on the same started minutes and languages as the translation.',
    'Per-video prices are charged once per job.',
    'Top-up bonus credits are the paid credits times the bonus percent, rounded down to a whole credit.'
]);

INSERT INTO prices (version, service, item, unit, credits, description) VALUES
    (1, 'music', 'music', 'second', 1, 'AI music, per second of song'),
    (1, 'avatars', 'talking_head.economy', 'second', 8, 'Talking-head avatar, economy tier'),
    (1, 'avatars', 'talking_head.balanced', 'second', 15, 'Talking-head avatar, balanced tier'),
    (1, 'avatars', 'talking_head.premium', 'second', 30, 'Talking-head avatar, premium tier'),
    (1, 'avatars', 'faceswap.economy', 'second', 4, 'Faceswap, economy tier'),
    (1, 'avatars', 'faceswap.balanced', 'second', 8, 'Faceswap, balanced tier'),
    (1, 'avatars', 'faceswap.premium', 'second', 16, 'Faceswap, premium tier'),
    (1, 'translations', 'translation.standard', 'started_minute_per_language', 120,
        'Video translation, standard tier'),
    (1, 'translations', 'translation.premium', 'started_minute_per_language', 190,
        'Video translation, premium tier'),
    (1, 'translations', 'translation.voice_clone', 'started_minute_per_language', 60,
        'Voice-cloning surcharge on a translation (any tier)'),
    (1, 'family_videos', 'family_video.moment', 'video', 100, 'Family video, moment mode'),
    (1, 'family_videos', 'family_video.story', 'video', 250, 'Family video, story mode'),
    (1, 'family_videos', 'family_video.album', 'video', 400, 'Family video, album mode'),
    (1, 'family_videos', 'family_video.chronicle', 'video', 800, 'Family video, chronicle mode');

INSERT INTO top_up_bonuses (version, min_usd, bonus_percent) VALUES
    (1, 50, 5),
    (1, 200, 10),
    (1, 1000, 20);
