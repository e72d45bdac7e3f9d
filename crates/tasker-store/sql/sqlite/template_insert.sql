-- A registered template's definition, kept beside its tasks (the first one stored wins). $1 key, $2 JSON.
INSERT INTO task_templates (template, definition) VALUES ($1, $2) ON CONFLICT (template) DO NOTHING
