-- The retention deletes the oldest predictions a sliver at a time, and PostgreSQL reuses their
-- space only once VACUUM has passed. At the default scale factor (a fifth of the table dead
-- before autovacuum runs) the table would grow a fifth past its byte limit first.
ALTER TABLE predictions SET (autovacuum_vacuum_scale_factor = 0.02);
