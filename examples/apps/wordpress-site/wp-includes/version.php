<?php
/**
 * WordPress Version
 *
 * Contains version information for the current WordPress release.
 */

/**
 * The WordPress version string.
 *
 * @global string $wp_version
 */
$wp_version = '6.4.3';

/**
 * Holds the WordPress DB revision, increments when changes are made to the WordPress DB schema.
 *
 * @global int $wp_db_version
 */
$wp_db_version = 56657;

/**
 * Holds the required PHP version.
 *
 * @global string $required_php_version
 */
$required_php_version = '7.0.0';

/**
 * Holds the required MySQL version.
 *
 * @global string $required_mysql_version
 */
$required_mysql_version = '5.0';
