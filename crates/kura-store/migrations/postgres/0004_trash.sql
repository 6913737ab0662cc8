-- Trash: a deleted file keeps its versions until it is purged. Same for both backends.
ALTER TABLE files ADD COLUMN deleted_at BIGINT;
