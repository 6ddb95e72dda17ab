-- The portal's language: a user's own choice ('' = follow the browser's
-- Accept-Language), and a workspace's, for the bot's built-in replies
-- ('' = its first owner's).
ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN language TEXT NOT NULL DEFAULT '';
