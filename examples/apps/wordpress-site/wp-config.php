<?php
/**
 * The base configuration for WordPress (an example site shipped for the demo).
 *
 * The credentials below are examples only; they open nothing.
 */

// ** Database settings ** //
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', 'example-only-not-a-secret' );
define( 'DB_HOST', 'localhost' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );

// ** Authentication unique keys and salts (examples, regenerate for a real site) ** //
define( 'AUTH_KEY',         'example-only-auth-key' );
define( 'SECURE_AUTH_KEY',  'example-only-secure-auth-key' );
define( 'LOGGED_IN_KEY',    'example-only-logged-in-key' );
define( 'NONCE_KEY',        'example-only-nonce-key' );
define( 'AUTH_SALT',        'example-only-auth-salt' );
define( 'SECURE_AUTH_SALT', 'example-only-secure-auth-salt' );
define( 'LOGGED_IN_SALT',   'example-only-logged-in-salt' );
define( 'NONCE_SALT',       'example-only-nonce-salt' );

$table_prefix = 'wp_';

define( 'WP_DEBUG', false );

/* That's all, stop editing! Happy publishing. */

if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}

require_once ABSPATH . 'wp-settings.php';
