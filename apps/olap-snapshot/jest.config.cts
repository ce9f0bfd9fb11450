module.exports = {
  displayName: 'olap-snapshot',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/apps/olap-snapshot',
};
