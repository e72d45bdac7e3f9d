-- The stored definition of a registered template: (definition JSON), or no row. $1 key.
SELECT definition FROM task_templates WHERE template = $1
