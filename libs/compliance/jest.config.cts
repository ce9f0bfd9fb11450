module.exports = {
  displayName: 'compliance',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/compliance',
};
