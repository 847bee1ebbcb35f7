"""No tables: the back office reads the billing apps' own. The module exists because
Django sends `post_migrate` only to apps with a models module, and the roles' sync
(apps.py) runs on it."""
