-- Information labels (DATA-2) and label-capped grants (DATA-3). Same for both backends.
ALTER TABLE folders ADD COLUMN label TEXT;
ALTER TABLE folders ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE folders ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE projects ADD COLUMN label TEXT;
ALTER TABLE projects ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE projects ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE files ADD COLUMN label TEXT;
ALTER TABLE files ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE files ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE grants ADD COLUMN max_label TEXT;
