# Makes versions/ a package so setuptools ships its revision files in the wheel.
