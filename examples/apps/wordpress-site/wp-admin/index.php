<?php
/**
 * Dashboard Administration Screen
 */

/** Load WordPress Bootstrap */
require_once __DIR__ . '/admin.php';
