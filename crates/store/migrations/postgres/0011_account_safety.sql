-- The last TOTP time step accepted for an account, so that a code cannot be used twice;
-- and whether the account must change its password before doing anything else (set when
-- an admin chooses the first password).
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
