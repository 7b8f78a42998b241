-- Wrong security codes are counted on their own, not with wrong passwords: a correct
-- password must not set back the count of codes guessed after it.
ALTER TABLE users ADD COLUMN failed_codes BIGINT NOT NULL DEFAULT 0;
